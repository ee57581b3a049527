package isolation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/instance"
	"github.com/guestcatalog/guestcatalog/framework/machine"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
)

// InstanceDisk is the guest's disk in a running instance's run directory
// (machine's overlay, copied from the saved guest on resume).
const InstanceDisk = "disk.qcow2"

// FromInstance is the Input for an instance left running by `catalog up`:
// the checks run in the guest that was started for real, not in a fresh
// one. What the record does not say is read from the running QEMU itself:
// the 9p shares from its command line (path, mount tag, readonly) and the
// host forwards from QMP (`info usernet`). The SSH connection is the
// caller's to close (Input.Guest is an *sshx.Client).
//
// The instance's QEMU was started before the canaries existed, so the
// token cannot be in its environment; the file and loopback canaries are
// made for this run as for a verify run.
func FromInstance(ctx context.Context, inst *instance.Instance, t *catalog.Template, c *Canaries, targets EgressTargets) (Input, func() error, error) {
	if inst == nil || t == nil || c == nil {
		return Input{}, nil, errors.New("isolation.FromInstance: instance, template and canaries must be set")
	}
	client, err := inst.Dial(ctx)
	if err != nil {
		return Input{}, nil, err
	}
	in := Input{Guest: client, Template: t, Canaries: c, QEMUPid: inst.QEMU.PID, Targets: targets}
	if inst.RunDir != "" {
		if p := filepath.Join(inst.RunDir, InstanceDisk); fileExists(p) {
			in.Overlay = p
		}
	}
	shares, err := sharesOf(inst.QEMU.PID)
	if err != nil {
		_ = client.Close()
		return Input{}, nil, err
	}
	// The guest path of a share: the template's mount of that tag, else
	// where the guest mounted it.
	declared := map[string]string{}
	if ms, err := machine.ResolveMounts(t, ""); err == nil {
		for _, m := range ms {
			declared[m.Tag] = m.GuestPath
		}
	}
	var guestMounts map[string]string
	for _, sh := range shares {
		gp, ok := declared[sh.Tag]
		if !ok {
			if guestMounts == nil {
				guestMounts = mountedTags(ctx, in)
			}
			gp = guestMounts[sh.Tag]
		}
		in.Mounts = append(in.Mounts, Mount{HostPath: sh.HostPath, GuestPath: gp, Tag: sh.Tag, Writable: !sh.ReadOnly})
	}
	if _, p, err := net.SplitHostPort(inst.SSH.Addr); err == nil {
		if port, err := strconv.Atoi(p); err == nil {
			in.PublishedPorts = append(in.PublishedPorts, port)
		}
	}
	if inst.QMPSocket != "" {
		out, err := qemu.QMPCommand(ctx, inst.QMPSocket, "human-monitor-command", map[string]string{"command-line": "info usernet"})
		if err == nil {
			var text string
			if json.Unmarshal(out, &text) == nil {
				for _, f := range parseHostForwards(text) {
					if f.guestPort == 22 || declaresPort(t, f.guestPort) {
						if !slices.Contains(in.PublishedPorts, f.hostPort) {
							in.PublishedPorts = append(in.PublishedPorts, f.hostPort)
						}
					}
				}
			}
		}
	}
	return in, client.Close, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func declaresPort(t *catalog.Template, guestPort int) bool {
	for _, pf := range t.PortForwards {
		if pf.GuestPort == guestPort {
			return true
		}
	}
	return false
}

// mountedTags maps each 9p tag mounted in the guest to its mount point.
func mountedTags(ctx context.Context, in Input) map[string]string {
	out, _ := run(ctx, in.Guest, `awk '$3 == "9p" { print $1, $2 }' /proc/mounts`, false, "")
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			m[f[0]] = f[1]
		}
	}
	return m
}

// share is a 9p export on a QEMU command line.
type share struct {
	Tag, HostPath string
	ReadOnly      bool
}

// sharesOf reads the 9p shares off a running QEMU's command line.
func sharesOf(pid int) ([]share, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, fmt.Errorf("reading QEMU's command line: %w", err)
	}
	return parseShares(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")), nil
}

// parseShares pairs each -fsdev local,id=X,path=P[,readonly=on] with the
// virtio-9p device that exports it (fsdev=X,mount_tag=T). QEMU's option
// syntax doubles a comma inside a value.
func parseShares(argv []string) []share {
	type fsdev struct {
		path     string
		readOnly bool
	}
	fsdevs := map[string]fsdev{}
	var devices [][2]string // fsdev id, tag
	for i := 0; i+1 < len(argv); i++ {
		opts := qemuOpts(argv[i+1])
		switch argv[i] {
		case "-fsdev":
			fsdevs[opts["id"]] = fsdev{path: opts["path"], readOnly: opts["readonly"] == "on" || opts["readonly"] == "true"}
		case "-device":
			if strings.HasPrefix(argv[i+1], "virtio-9p-") {
				devices = append(devices, [2]string{opts["fsdev"], opts["mount_tag"]})
			}
		}
	}
	var out []share
	for _, d := range devices {
		if fd, ok := fsdevs[d[0]]; ok {
			out = append(out, share{Tag: d[1], HostPath: fd.path, ReadOnly: fd.readOnly})
		}
	}
	return out
}

// qemuOpts splits a QEMU option string (k=v,k=v; ",," is a literal comma).
func qemuOpts(s string) map[string]string {
	m := map[string]string{}
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			if i+1 < len(s) && s[i+1] == ',' {
				cur.WriteByte(',')
				i++
				continue
			}
			parts = append(parts, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(s[i])
	}
	parts = append(parts, cur.String())
	for _, p := range parts {
		k, v, _ := strings.Cut(p, "=")
		m[k] = v
	}
	return m
}

type hostForward struct{ hostPort, guestPort int }

// parseHostForwards reads `info usernet`'s HOST_FORWARD lines:
//
//	TCP[HOST_FORWARD]  13  127.0.0.1 40163  10.0.2.15  22  0  0
func parseHostForwards(text string) []hostForward {
	var out []hostForward
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) < 6 || !strings.Contains(f[0], "HOST_FORWARD") {
			continue
		}
		hp, err1 := strconv.Atoi(f[3])
		gp, err2 := strconv.Atoi(f[5])
		if err1 == nil && err2 == nil {
			out = append(out, hostForward{hostPort: hp, guestPort: gp})
		}
	}
	return out
}
