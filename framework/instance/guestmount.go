package instance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// tagWait bounds the wait for the shares' virtio devices to register their
// tags after the PCI rescan, in tenths of a second (TCG on a busy host).
const tagWait = 300

// mountScript is the root shell script that mounts the shares in a resumed
// guest: it loads 9p, rescans the PCI bus when a share's device is new
// (rescan), waits for every tag, mounts each share not yet mounted with
// the options the template's own mounts use (cloudinit.MountOptions), gives
// the writable mounts' roots to user, and checks /proc/mounts: each guest
// path mounted from its tag, 9p, rw or ro. Under TCG every process the
// guest starts costs 0.1-0.3 s on a busy host, so the script starts few:
// one tag poll for all shares, one mkdir, one chown, one check, and a
// mount per share. It prints the guest's uptime at each step (at).
func mountScript(mounts []Mount, user string, rescan bool) string {
	q := exec.Quote
	var b strings.Builder
	fmt.Fprintf(&b, `fail() { c=$1; shift; echo "$*" >&2; exit $c; }
at() { read -r up _ < /proc/uptime; echo "$up $*"; }
at start
modprobe -a 9pnet_virtio 9p 2>/dev/null
grep -qw 9p /proc/filesystems && [ -d /sys/bus/virtio/drivers/9pnet_virtio ] || fail %d "kernel $(uname -r) has no 9p (modprobe 9pnet_virtio 9p failed)"
at 9p
`, exitNo9p)
	if rescan {
		b.WriteString("echo 1 > /sys/bus/pci/rescan\nat rescan\n")
	}
	var tags, dirs, rw, want []string
	for _, m := range mounts {
		tags = append(tags, q(m.Tag))
		dirs = append(dirs, q(m.GuestPath))
		mode := "ro"
		if m.Writable {
			mode = "rw"
			rw = append(rw, q(m.GuestPath))
		}
		want = append(want, m.Tag+" "+m.GuestPath+" "+mode)
	}
	// The tags (each file holds one, NUL-terminated) until all are there.
	fmt.Fprintf(&b, `i=0
while :; do
  have=" $(cat /sys/bus/virtio/drivers/9pnet_virtio/virtio*/mount_tag 2>/dev/null | tr '\000\n' '  ') "
  missing=
  for t in %s; do case "$have" in *" $t "*) ;; *) missing="$missing $t" ;; esac; done
  [ -z "$missing" ] && break
  i=$((i+1)); [ $i -gt %d ] && fail %d "no 9p device with tag$missing appeared"
  sleep 0.1
done
at tags
mkdir -p %s || fail %d "mkdir failed"
mnt=" $(awk '$3 == "9p" { printf "%%s:%%s ", $1, $2 }' /proc/mounts) "
`, strings.Join(tags, " "), tagWait, exitNoTag, strings.Join(dirs, " "), exitMount)
	for _, m := range mounts {
		fmt.Fprintf(&b, `case "$mnt" in *" "%[2]s:%[1]s" "*) ;; *) mount -t 9p -o %[3]s %[2]s %[1]s || fail %[4]d "mount -t 9p %[2]s %[1]s failed" ;; esac`+"\n",
			q(m.GuestPath), q(m.Tag), cloudinit.MountOptions(m.Writable), exitMount)
	}
	b.WriteString("at mounted\n")
	if len(rw) > 0 {
		fmt.Fprintf(&b, `chown %s: %s || fail %d "chown of a writable mount's root failed: its host directory needs user xattrs (security_model=mapped-xattr)"`+"\n",
			q(user), strings.Join(rw, " "), exitChown)
	}
	// One check of every mount: its tag, 9p, and rw or ro in its options.
	fmt.Fprintf(&b, `bad=$(awk -v want=%s 'BEGIN { n = split(want, w, ";") }
$3 == "9p" { o = "," $4 ","; for (i = 1; i <= n; i++) { split(w[i], f, " "); if ($1 == f[1] && $2 == f[2] && index(o, "," f[3] ",")) ok[i] = 1 } }
END { for (i = 1; i <= n; i++) if (!ok[i]) { split(w[i], f, " "); printf "%%s is not mounted %%s from %%s; ", f[2], f[3], f[1] } }' /proc/mounts)
[ -z "$bad" ] || fail %d "$bad"
at checked
`, q(strings.Join(want, ";")), exitVerify)
	return b.String()
}

// mountGuest mounts the shares in the resumed guest over its SSH
// connection (as root, with sudo) and verifies each mount; rescan when a
// share's device is new to the saved guest (a --mount that is not a
// template mount).
func mountGuest(ctx context.Context, m *machine.Machine, user string, p mountPlan, log *slog.Logger) (time.Duration, error) {
	if len(p.Mounts) == 0 {
		return 0, nil
	}
	start := time.Now()
	c := m.SSH()
	if c == nil {
		return 0, errors.New("instance: the guest has no SSH connection to mount over")
	}
	script := mountScript(p.Mounts, user, p.Rescan)
	res, err := c.Run(ctx, exec.Cmd{Args: []string{"sh", "-c", script}, Sudo: true})
	took := time.Since(start)
	if log != nil {
		// The guest's uptime at each step: where the time goes.
		log.Info("mounted the shares", "took", took.Round(time.Millisecond), "steps", strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(res.Stdout)), " ", "=")))
	}
	if err != nil {
		return took, mountError(err)
	}
	return took, nil
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
