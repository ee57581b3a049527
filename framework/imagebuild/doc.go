// Package imagebuild builds Debian guest images locally and hermetically from
// Debian's archive: mmdebstrap (minbase) into a directory, a rootfs tuned for a
// fast cloud-init boot under QEMU, `mkfs.ext4 -d` (no loop device, no mount)
// and `qemu-img convert` to qcow2, with the kernel and initrd beside it for
// direct kernel boot. Builds are cached under <cache>/images/<key>/, keyed by
// a hash of the recipe, and written atomically behind a per-entry lock.
package imagebuild
