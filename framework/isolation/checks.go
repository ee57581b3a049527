package isolation

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/exec"
)

// Mount is a mount as the guest got it.
type Mount struct {
	HostPath, GuestPath, Tag string
	Writable                 bool
}

// EgressTargets are outside addresses the egress checks try from the guest
// (resolved on the host: the guest may have no DNS). Empty fields skip the
// checks that need them.
type EgressTargets struct {
	// Host is an allowlisted name for egress proxy (deb.debian.org).
	Host string
	// IPv4 and IPv6 are addresses of a reachable outside server (port 80).
	IPv4, IPv6 string
	// Denied is a name the proxy must refuse (not in the allowlist).
	Denied string
}

// Input is what the in-guest checks need. Guest runs commands in the guest
// (framework/exec.Runner: sshx.Client over SSH, as the template's user;
// Cmd.Sudo for root).
type Input struct {
	Guest    exec.Runner
	Template *catalog.Template
	Mounts   []Mount
	Canaries *Canaries
	// QEMUPid is the guest's QEMU process; its listening sockets are the
	// guest ports published on the host.
	QEMUPid int
	// PublishedPorts are the host ports the framework forwards on purpose
	// (SSH and the template's portForwards).
	PublishedPorts []int
	Targets        EgressTargets
	// Overlay is the guest's qcow2 overlay on the host (its run dir's
	// disk.qcow2); "" skips the disk check.
	Overlay string
	// Resume, when set, resumes the template's saved guest into a fresh
	// disk (ResumeSaved); the snapshot-uniqueness check calls it twice.
	// Nil: that check is skipped with NoResumeReason.
	Resume         Resumer
	NoResumeReason string
	// Skip lists properties not to check (reported skipped, "on request").
	Skip []string
	// CheckTimeout bounds one check (default 5 minutes; TCG is slow).
	CheckTimeout time.Duration

	// prior are the statuses so far (Run sets it for checkAfterFlush).
	prior map[string]Status
	// hostStat replaces allocated (the overlay's blocks and size) in tests.
	hostStat func(path string) (alloc, size int64, err error)
	// hostFree replaces the host's free-space probe in tests.
	hostFree func(dir string) (int64, error)
}

// Run runs every in-guest property check and returns the profile. The
// token search runs first: later checks may carry the token into the
// guest's memory when a property does not hold (the loopback canary
// answers it).
func Run(ctx context.Context, in Input) (Profile, error) {
	if in.Guest == nil || in.Template == nil || in.Canaries == nil {
		return Profile{}, errors.New("isolation.Run: Input.Guest, Template and Canaries must be set")
	}
	if in.CheckTimeout <= 0 {
		in.CheckTimeout = 5 * time.Minute
	}
	p := Profile{Template: in.Template.Name, Strict: in.Template.Isolation == catalog.IsolationStrict}
	in.prior = map[string]Status{}
	for _, prop := range Properties() {
		if slices.Contains(in.Skip, prop) {
			p.Results = append(p.Results, Result{Property: prop, Status: Skipped, Detail: "not checked (skipped on request)"})
			continue
		}
		run := checks()[prop]
		start := time.Now()
		cctx, cancel := context.WithTimeout(ctx, in.CheckTimeout)
		st, detail := run(cctx, in)
		cancel()
		if ctx.Err() != nil {
			return p, ctx.Err()
		}
		p.Results = append(p.Results, Result{Property: prop, Status: st, Detail: detail, Seconds: time.Since(start).Seconds()})
		in.prior[prop] = st
	}
	return p, nil
}

// checks maps each property of Properties to its check.
func checks() map[string]func(context.Context, Input) (Status, string) {
	return map[string]func(context.Context, Input) (Status, string){
		PropCredNoToken:          checkTokenNowhere,
		PropMountsOnlyDeclared:   checkOnlyDeclaredMounts,
		PropMountsWritable:       checkWritable,
		PropMountsReadOnlyOnHost: checkReadOnlyOnHost,
		PropMountsSymlinkOnHost:  checkSymlinks,
		PropCredNoForwarding:     checkNoForwarding,
		PropResources:            checkResources,
		PropNetGuestListeners:    checkGuestListeners,
		PropNetHostLoopback:      checkHostLoopback,
		PropNetMetadata:          checkMetadata,
		PropNetDirectEgress:      checkDirectEgress,
		PropNetDNS:               checkGuestDNS,
		PropNetIPv6:              checkIPv6,
		PropNetPolicy:            checkPolicy,
		PropNetAfterFlush:        checkAfterFlush,
		PropResourcesDisk:        checkDisk,
		PropSnapshotUnique:       checkSnapshotUnique,
	}
}

// The mounts of 9p filesystems in the guest, and every 9p tag its kernel
// sees (exported devices, mounted or not).
const listMountsScript = `awk '$3 == "9p" { print "mount", $1, $2 }' /proc/mounts
for f in /sys/bus/virtio/drivers/9pnet_virtio/virtio*/mount_tag; do
  [ -e "$f" ] && printf 'tag %s %s\n' "$(tr -d '\0' < "$f")" -
done
true`

func checkOnlyDeclaredMounts(ctx context.Context, in Input) (Status, string) {
	out, err := run(ctx, in.Guest, listMountsScript, true, "")
	if err != nil {
		return Skipped, err.Error()
	}
	var mounted, tags []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 3 && f[0] == "mount" {
			mounted = append(mounted, f[1]+" "+f[2])
		}
		if len(f) == 3 && f[0] == "tag" {
			tags = append(tags, f[1])
		}
	}
	var wantMounted, wantTags []string
	for _, m := range in.Mounts {
		wantMounted = append(wantMounted, m.Tag+" "+m.GuestPath)
		wantTags = append(wantTags, m.Tag)
	}
	sort.Strings(mounted)
	sort.Strings(tags)
	sort.Strings(wantMounted)
	sort.Strings(wantTags)
	detail := fmt.Sprintf("9p mounts %v (declared %v), exported tags %v", mounted, wantMounted, tags)
	if slices.Equal(mounted, wantMounted) && slices.Equal(tags, wantTags) {
		return Held, detail
	}
	return NotHeld, detail
}

// tokenSearchScript reads the token from stdin (never from its command
// line: sudo logs command lines to the journal) and looks for it in the
// text files of every directory a running system writes (/etc, /home,
// /root, /tmp, /run, /var, /srv, /opt, /mnt, /media) and of every mount
// point (its arguments), every process's environment, the journal and the
// NoCloud seed device. /usr, /lib, /bin, /sbin and /boot are left out: they
// are the image's, built before the token existed, and grepping them under
// TCG takes minutes. It prints where it found the token.
const tokenSearchScript = `IFS= read -r T || exit 3
[ -n "$T" ] || exit 3
pat() { printf '%s\n' "$T"; }
roots=""
for d in /etc /home /root /tmp /run /var /srv /opt /mnt /media "$@"; do [ -e "$d" ] && roots="$roots $d"; done
grep -rIlsF -f <(pat) $roots 2>/dev/null | head -5 | sed 's/^/file /'
for e in /proc/[0-9]*/environ; do
  if tr '\0' '\n' < "$e" 2>/dev/null | grep -qF -f <(pat); then echo "environ $e"; fi
done
if journalctl -b --no-pager 2>/dev/null | grep -qF -f <(pat); then echo "journal"; fi
for d in $(blkid -o device -t LABEL=cidata 2>/dev/null) $(blkid -o device -t LABEL=CIDATA 2>/dev/null); do
  if grep -qaF -f <(pat) "$d"; then echo "seed $d"; fi
done
for f in /var/lib/cloud/instance/user-data.txt /var/lib/cloud/instance/cloud-config.txt; do
  if [ -e "$f" ] && grep -qF -f <(pat) "$f"; then echo "user-data $f"; fi
done
echo done`

func checkTokenNowhere(ctx context.Context, in Input) (Status, string) {
	args := ""
	for _, m := range in.Mounts {
		args += " " + exec.Quote(m.GuestPath)
	}
	out, err := run(ctx, in.Guest, "bash -c "+exec.Quote(tokenSearchScript)+" _"+args, true, in.Canaries.Token+"\n")
	if err != nil {
		return Skipped, err.Error()
	}
	out = strings.TrimSpace(out)
	if !strings.HasSuffix(out, "done") {
		return Skipped, "the search did not finish: " + out
	}
	found := strings.TrimSpace(strings.TrimSuffix(out, "done"))
	if found == "" {
		return Held, "the token is in no guest file, process environment, journal, seed or user-data"
	}
	return NotHeld, "token found: " + strings.ReplaceAll(found, "\n", "; ")
}

func checkWritable(ctx context.Context, in Input) (Status, string) {
	var details []string
	status := Skipped
	for _, m := range in.Mounts {
		if !m.Writable {
			continue
		}
		name := ".gc-isolation-write-" + in.Canaries.Token[:8]
		_, err := run(ctx, in.Guest, fmt.Sprintf("echo written-by-guest > %s", exec.Quote(m.GuestPath+"/"+name)), false, "")
		host := filepath.Join(m.HostPath, name)
		b, rerr := os.ReadFile(host)
		_ = os.Remove(host)
		if err != nil || rerr != nil || strings.TrimSpace(string(b)) != "written-by-guest" {
			return NotHeld, fmt.Sprintf("%s: the guest user could not write a file the host sees (guest: %v, host: %v)", m.GuestPath, err, rerr)
		}
		status = Held
		details = append(details, m.GuestPath+": the user's file appeared on the host")
	}
	if status == Skipped {
		return Skipped, "no writable mount"
	}
	return status, strings.Join(details, "; ")
}

// checkReadOnlyOnHost: guest root remounts each read-only mount read-write
// and writes; the host must see no new file.
func checkReadOnlyOnHost(ctx context.Context, in Input) (Status, string) {
	var details []string
	status := Skipped
	for _, m := range in.Mounts {
		if m.Writable {
			continue
		}
		name := ".gc-isolation-ro-" + in.Canaries.Token[:8]
		dir := exec.Quote(m.GuestPath)
		file := exec.Quote(m.GuestPath + "/" + name)
		script := fmt.Sprintf(`mount -o remount,rw %s 2>&1; echo x > %s 2>&1; mkdir %s.d 2>&1; touch %s.t 2>&1; true`, dir, file, file, file)
		out, _ := run(ctx, in.Guest, script, true, "")
		var appeared []string
		for _, suffix := range []string{"", ".d", ".t"} {
			p := filepath.Join(m.HostPath, name+suffix)
			if _, err := os.Lstat(p); err == nil {
				appeared = append(appeared, p)
				_ = os.RemoveAll(p)
			}
		}
		if len(appeared) > 0 {
			return NotHeld, fmt.Sprintf("%s: after guest root remounted it rw, these appeared on the host: %v", m.GuestPath, appeared)
		}
		status = Held
		details = append(details, fmt.Sprintf("%s: nothing appeared on the host (guest saw: %s)", m.GuestPath, oneLine(out)))
	}
	if status == Skipped {
		return Skipped, "no read-only mount"
	}
	return status, strings.Join(details, "; ")
}

// checkSymlinks: a symlink the guest writes into a writable mount must not
// be a symlink on the host (host tools would follow it), and writing
// through it must not reach the host's canary directory.
func checkSymlinks(ctx context.Context, in Input) (Status, string) {
	var details []string
	status := Skipped
	for _, m := range in.Mounts {
		if !m.Writable {
			continue
		}
		link := m.GuestPath + "/.gc-isolation-link-" + in.Canaries.Token[:8]
		script := fmt.Sprintf(`ln -sfn %s %s && echo pwned > %s/pwned 2>/dev/null; ln -sfn / %s.root; true`,
			exec.Quote(in.Canaries.Dir), exec.Quote(link), exec.Quote(link), exec.Quote(link))
		if _, err := run(ctx, in.Guest, script, false, ""); err != nil {
			return Skipped, err.Error()
		}
		hostLink := filepath.Join(m.HostPath, filepath.Base(link))
		var bad []string
		for _, p := range []string{hostLink, hostLink + ".root"} {
			fi, err := os.Lstat(p)
			if err == nil && fi.Mode()&os.ModeSymlink != 0 {
				target, _ := os.Readlink(p)
				bad = append(bad, fmt.Sprintf("%s is a symlink to %s on the host", p, target))
			}
			_ = os.Remove(p)
		}
		if _, err := os.Lstat(filepath.Join(in.Canaries.Dir, "pwned")); err == nil {
			bad = append(bad, "a file appeared in the host's canary directory")
			_ = os.Remove(filepath.Join(in.Canaries.Dir, "pwned"))
		}
		if len(bad) > 0 {
			return NotHeld, m.GuestPath + ": " + strings.Join(bad, "; ")
		}
		status = Held
		details = append(details, m.GuestPath+": the guest's symlinks are plain files on the host")
	}
	if status == Skipped {
		return Skipped, "no writable mount"
	}
	return status, strings.Join(details, "; ")
}

func checkNoForwarding(ctx context.Context, in Input) (Status, string) {
	out, err := run(ctx, in.Guest, `echo "agent=${SSH_AUTH_SOCK:-}"; echo "display=${DISPLAY:-}"; ls -d /tmp/ssh-* /tmp/.X11-unix/* 2>/dev/null | sed 's/^/socket=/'; true`, false, "")
	if err != nil {
		return Skipped, err.Error()
	}
	out = strings.TrimSpace(out)
	if out == "agent=\ndisplay=" {
		return Held, "no SSH_AUTH_SOCK, no DISPLAY, no agent or X11 socket"
	}
	return NotHeld, out
}

func checkResources(ctx context.Context, in Input) (Status, string) {
	out, err := run(ctx, in.Guest, `nproc; awk '/^MemTotal:/ { print $2 }' /proc/meminfo`, false, "")
	if err != nil {
		return Skipped, err.Error()
	}
	f := strings.Fields(out)
	if len(f) != 2 {
		return Skipped, "unexpected output: " + out
	}
	cpus, _ := strconv.Atoi(f[0])
	memKiB, _ := strconv.ParseInt(f[1], 10, 64)
	wantCPUs := catalog.DefaultCPUs
	if in.Template.CPUs != nil {
		wantCPUs = *in.Template.CPUs
	}
	wantKiB := in.Template.MemoryBytes() >> 10
	detail := fmt.Sprintf("%d CPUs (declared %d), MemTotal %d KiB (declared %d KiB)", cpus, wantCPUs, memKiB, wantKiB)
	// The kernel keeps some memory for itself: MemTotal is a little less
	// than what QEMU gives, never more.
	if cpus == wantCPUs && memKiB <= wantKiB && memKiB >= wantKiB*8/10 {
		return Held, detail
	}
	return NotHeld, detail
}

// run runs a script in the guest, as root with sudo, with stdin.
func run(ctx context.Context, g exec.Runner, script string, sudo bool, stdin string) (string, error) {
	cmd := exec.Script(script)
	cmd.Sudo = sudo
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	res, err := g.Run(ctx, cmd)
	return string(res.Stdout), err
}
