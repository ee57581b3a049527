package cloudinit

import (
	"fmt"
	"path"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/exec"
)

// MountTag is the 9p mount tag of the template's i-th mount: the framework
// exports the host directory under it (framework/qemu Share), the guest
// mounts it by it.
func MountTag(i int) string { return fmt.Sprintf("mount%d", i) }

// MountOptions are the 9p mount options the guest uses: virtio transport,
// the 9P2000.L dialect (POSIX semantics), no guest page cache (the host
// side sees writes at once and the guest sees the host's), and ro for a
// read-only mount. The ro option is a courtesy: QEMU refuses writes to a
// read-only share whatever the guest mounts it as.
func MountOptions(writable bool) string {
	o := "trans=virtio,version=9p2000.L,msize=262144,cache=none"
	if !writable {
		o += ",ro"
	}
	return o
}

// mountBootcmd mounts the template's mounts on every boot (bootcmd runs
// before any other module): it loads the 9p modules (Debian's generic
// kernel has them as modules; the cloud kernel has none, and then the mount
// fails and the template's probes say so), creates the mount points and
// mounts what is not mounted yet.
func mountBootcmd(t *catalog.Template, home string) seq {
	if len(t.Mounts) == 0 {
		return nil
	}
	out := seq{"modprobe -a 9pnet_virtio 9p || true"}
	for i, m := range t.Mounts {
		dir := exec.Quote(path.Clean(m.GuestPath(home)))
		out = append(out, fmt.Sprintf("mkdir -p %s && { mountpoint -q %s || mount -t 9p -o %s %s %s; }",
			dir, dir, MountOptions(m.Writable), MountTag(i), dir))
	}
	return out
}

// mountRuncmd gives the user the roots of the writable mounts, once the
// user exists (runcmd runs after cloud-init created it). With QEMU's
// mapped-xattr security model the owner is recorded in an xattr on the
// host, not applied there.
func mountRuncmd(t *catalog.Template, user, home string) seq {
	var out seq
	for _, m := range t.Mounts {
		if m.Writable {
			out = append(out, seq{"chown", user + ":", path.Clean(m.GuestPath(home))})
		}
	}
	return out
}
