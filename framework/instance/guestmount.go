package instance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/guestcatalog/guestcatalog/cloudinit"
	"github.com/guestcatalog/guestcatalog/framework/exec"
	"github.com/guestcatalog/guestcatalog/framework/machine"
)

// ErrNo9p: the guest's kernel has no 9p (Debian's cloud kernel, for one):
// it cannot mount a share. A template for mounts builds its image with the
// generic kernel (build.kernel: generic), as debian-13-sandbox does.
var ErrNo9p = errors.New("the guest kernel has no 9p filesystem")

// ErrMountFailed: the guest could not mount a share, or the mount is not
// what was asked.
var ErrMountFailed = errors.New("mounting in the guest failed")

// Exit codes of mountScript, each a reason.
const (
	exitNo9p    = 10
	exitNoTag   = 11
	exitMount   = 12
	exitChown   = 13
	exitVerify  = 14
	exitUnmount = 15
)

// tagWait bounds the wait for a share's virtio device to register its tag
// after the PCI rescan, in tenths of a second (TCG on a busy host).
const tagWait = 300

// mountScript is the root shell script that mounts the shares in a resumed
// guest: it loads 9p, rescans the PCI bus when a share's device is new
// (rescan), waits for each tag, mounts it with the options the template's
// own mounts use (cloudinit.MountOptions), gives a writable mount's root to
// user, and checks /proc/mounts for each: the tag, 9p, and rw or ro.
func mountScript(mounts []Mount, user string, rescan bool) string {
	q := exec.Quote
	var b strings.Builder
	fmt.Fprintf(&b, `fail() { c=$1; shift; echo "$*" >&2; exit $c; }
modprobe -a 9pnet_virtio 9p 2>/dev/null
grep -qw 9p /proc/filesystems && [ -d /sys/bus/virtio/drivers/9pnet_virtio ] || fail %d "kernel $(uname -r) has no 9p (modprobe 9pnet_virtio 9p failed)"
hastag() { for f in /sys/bus/virtio/drivers/9pnet_virtio/virtio*/mount_tag; do [ -r "$f" ] && [ "$(tr -d '\000\n' < "$f")" = "$1" ] && return 0; done; return 1; }
waittag() { i=0; until hastag "$1"; do i=$((i+1)); [ $i -gt %d ] && fail %d "no 9p device with tag $1 appeared"; sleep 0.1; done; }
mounted() { awk -v t="$1" -v d="$2" '$1 == t && $2 == d && $3 == "9p" { print $4; f = 1 } END { exit !f }' /proc/mounts; }
`, exitNo9p, tagWait, exitNoTag)
	if rescan {
		b.WriteString("echo 1 > /sys/bus/pci/rescan\n")
	}
	for _, m := range mounts {
		opts := cloudinit.MountOptions(m.Writable)
		want := "ro"
		if m.Writable {
			want = "rw"
		}
		fmt.Fprintf(&b, "waittag %s\n", q(m.Tag))
		fmt.Fprintf(&b, "mkdir -p %[1]s || fail %[4]d \"mkdir %[1]s failed\"\nmounted %[2]s %[1]s >/dev/null || mount -t 9p -o %[3]s %[2]s %[1]s || fail %[4]d \"mount -t 9p %[2]s %[1]s failed\"\n",
			q(m.GuestPath), q(m.Tag), opts, exitMount)
		if m.Writable {
			fmt.Fprintf(&b, "chown %s: %s || fail %d \"chown of %s failed: the host directory %s needs user xattrs (security_model=mapped-xattr)\"\n",
				q(user), q(m.GuestPath), exitChown, m.GuestPath, m.HostPath)
		}
		fmt.Fprintf(&b, "o=$(mounted %s %s) || fail %d \"%s is not mounted from %s\"\n", q(m.Tag), q(m.GuestPath), exitVerify, m.GuestPath, m.Tag)
		fmt.Fprintf(&b, "case \",$o,\" in *,%s,*) ;; *) fail %d \"%s is mounted with $o, want %s\" ;; esac\n", want, exitVerify, m.GuestPath, want)
	}
	return b.String()
}

// mountGuest mounts the shares in the resumed guest over its SSH
// connection (as root, with sudo) and verifies each mount; rescan when a
// share's device is new to the saved guest (a --mount that is not a
// template mount).
func mountGuest(ctx context.Context, m *machine.Machine, user string, p mountPlan) (time.Duration, error) {
	if len(p.Mounts) == 0 {
		return 0, nil
	}
	start := time.Now()
	c := m.SSH()
	if c == nil {
		return 0, errors.New("instance: the guest has no SSH connection to mount over")
	}
	script := mountScript(p.Mounts, user, p.Rescan)
	_, err := c.Run(ctx, exec.Cmd{Args: []string{"sh", "-c", script}, Sudo: true})
	if err != nil {
		return time.Since(start), mountError(err)
	}
	return time.Since(start), nil
}

// mountError turns the script's exit code into a sentinel and its message.
func mountError(err error) error {
	var re *exec.RunError
	if !errors.As(err, &re) || re.Result.ExitCode < exitNo9p {
		return fmt.Errorf("%w: %w", ErrMountFailed, err)
	}
	msg := strings.TrimSpace(string(re.Result.Stderr))
	switch re.Result.ExitCode {
	case exitNo9p:
		return fmt.Errorf("%w: %s; mounts need a template whose image has 9p, e.g. debian-13-sandbox (build.kernel: generic)", ErrNo9p, msg)
	default:
		return fmt.Errorf("%w: %s", ErrMountFailed, msg)
	}
}

// unmountForSave unmounts the template's mounts in a provisioned guest
// before it is saved: QEMU refuses savevm while a 9p export is mounted
// (its migration blocker goes with the guest's last reference to the
// share). The shares' devices stay in the saved guest; mountGuest mounts
// them again after each resume.
func unmountForSave(ctx context.Context, m *machine.Machine) error {
	ms := m.Mounts()
	if len(ms) == 0 {
		return nil
	}
	c := m.SSH()
	if c == nil {
		return errors.New("instance: the guest has no SSH connection to unmount over")
	}
	var b strings.Builder
	b.WriteString("sync\n")
	for _, sm := range ms {
		fmt.Fprintf(&b, "! mountpoint -q %[1]s || umount %[1]s || { echo \"umount %[1]s failed\" >&2; exit %[2]d; }\n", exec.Quote(sm.GuestPath), exitUnmount)
	}
	if _, err := c.Run(ctx, exec.Cmd{Args: []string{"sh", "-c", b.String()}, Sudo: true}); err != nil {
		return fmt.Errorf("unmounting the template's mounts before saving: %w", err)
	}
	return nil
}
