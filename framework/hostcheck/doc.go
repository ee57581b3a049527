// Package hostcheck says whether this host can build and boot guests of a
// foreign architecture (an aarch64 guest on an x86_64 host): the system
// emulator, the UEFI firmware, and the binfmt_misc registration of
// qemu-user that a foreign-arch root filesystem build (mmdebstrap running
// arm64 maintainer scripts) needs. Each check says how to fix what is
// missing. It reads only the paths it is given (a Host value), so tests run
// it against a fake /proc and /usr.
package hostcheck
