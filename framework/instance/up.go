package instance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/intervals"
	"github.com/guestcatalog/guestcatalog/framework/machine"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
	"github.com/guestcatalog/guestcatalog/framework/sshx"
)

// Instance is a guest left running by Up: its record and directory.
type Instance struct {
	Record
	Dir string
	// MountTook is how long mounting the shares in the guest took (the
	// PCI rescan, the wait for the devices, mount and its checks); set by
	// Up only.
	MountTook time.Duration `json:"-"`
}

// UpInput says what to start.
type UpInput struct {
	// Guest to resume (FindSaved).
	Guest *Guest
	// Name of the instance; "" : the template's name, or name-2, -3, ...
	// when taken. A given name that is taken is ErrExists.
	Name string
	// Mounts are --mount values (ParseMounts): host directories shared
	// with the guest besides the template's mounts, or replacing the host
	// directory of the template's mount at the same guest path.
	Mounts    []MountSpec
	Intervals *intervals.Set
	Logger    *slog.Logger
	// ProxyHelper is the command (argv; Up appends --instance-dir DIR)
	// that serves the egress proxy of a template with egress: proxy,
	// detached, for as long as the instance runs (netproxy.go); empty:
	// DefaultProxyHelper.
	ProxyHelper []string
}

// LogsDir is the instance's logs directory (serial console, QEMU's log,
// QMP events, phase timings), inside its directory.
const LogsDir = "logs"

// Up resumes the saved guest into a new instance and leaves it running
// after this process exits. The instance has its own directory (its own
// copy of the saved disk, seed, keys, QMP socket, logs), its own name and
// its own SSH port, so instances of one template run side by side. If ctx
// ends or anything fails before the guest is ready, nothing is left.
func (s *Store) Up(ctx context.Context, in UpInput) (*Instance, error) {
	if in.Guest == nil || in.Guest.Template == nil {
		return nil, errors.New("instance.Up: UpInput.Guest is nil")
	}
	self, err := Self()
	if err != nil {
		return nil, err
	}
	rec := Record{Template: in.Guest.Template.Name, Arch: in.Guest.Arch, Created: time.Now().UTC(),
		BootID: qemu.BootID(), Creator: self}
	var name, dir string
	if in.Name != "" {
		name = in.Name
		dir, err = s.reserve(name, rec)
	} else {
		name, dir, err = s.reserveFree(defaultName(in.Guest.Template.Name), rec)
	}
	if err != nil {
		return nil, err
	}
	inst, err := s.up(ctx, in, name, dir, rec)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return inst, nil
}

func (s *Store) up(ctx context.Context, in UpInput, name, dir string, rec Record) (_ *Instance, retErr error) {
	cfg, err := in.Guest.resumeConfig(ctx)
	if err != nil {
		return nil, err
	}
	cfg.Name = "i-" + name
	cfg.RunRoot = dir
	cfg.ArtifactsDir = filepath.Join(dir, LogsDir)
	cfg.Detached = true
	cfg.KeepRunDir = true
	cfg.Intervals = in.Intervals
	cfg.Logger = in.Logger
	plan, err := withMounts(&cfg, in.Mounts)
	if err != nil {
		return nil, err
	}
	// The egress proxy runs in a helper that outlives this process; it
	// listens before QEMU starts, whose guestfwd relay targets it.
	if pol := cfg.Template.NetworkPolicy(); pol.Restricted() && pol.Egress == catalog.EgressProxy {
		hl := false
		if pol.HostLoopback != nil {
			hl = *pol.HostLoopback
		}
		p, addr, err := startProxyHelper(ctx, in.ProxyHelper, dir, ProxyConfig{Allow: pol.Allow, HostLoopback: hl})
		if err != nil {
			return nil, err
		}
		defer func() {
			if retErr != nil {
				_ = stopProxyHelper(p)
			}
		}()
		cfg.ProxyAddr = addr
		rec.Proxy, rec.ProxyAddr = p, addr
		// The starting record names the helper too, so that down and gc
		// of an up that dies from here stop it (it also stops itself
		// once this process is gone).
		starting := rec
		starting.Format, starting.Name, starting.State = Format, name, StateStarting
		if err := writeRecord(dir, &starting); err != nil {
			return nil, err
		}
	}
	m, err := in.Guest.start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	// From here a failure must stop QEMU itself: Discard does.
	fail := func(err error) (*Instance, error) {
		_ = m.Discard(context.WithoutCancel(ctx))
		return nil, err
	}
	vm := m.QEMU()
	qstart, err := qemu.ProcessStart(vm.PID())
	if err != nil {
		return fail(fmt.Errorf("reading qemu's start time: %w", err))
	}
	ssh, err := sshRecord(m, cfg.Template.User.Name)
	if err != nil {
		return fail(err)
	}
	took, err := mountGuest(ctx, m, cfg.Template.User.Name, plan, in.Logger)
	if err != nil {
		return fail(err)
	}
	rec.Format, rec.Name, rec.State = Format, name, StateRunning
	rec.Accel = m.Accelerator().Used
	rec.Started = m.Started().UTC()
	rec.QEMU = Proc{PID: vm.PID(), Start: qstart}
	rec.QMPSocket = vm.Spec().QMPSocket
	rec.SSH = ssh
	rec.RunDir = m.RunDir()
	rec.Saved = in.Guest.Saved.Dir
	rec.Mounts = plan.Mounts
	// The record goes first: once it says running, QEMU owns the
	// directory, and a crash between here and Detach leaves an instance
	// that ps shows and down stops, not an orphan.
	if err := writeRecord(dir, &rec); err != nil {
		return fail(err)
	}
	if err := m.Detach(); err != nil {
		return fail(err)
	}
	return &Instance{Record: rec, Dir: dir, MountTook: took}, nil
}

// sshRecord pins the guest's host key in a known_hosts file beside the
// client key, for `ssh` and for Exec.
func sshRecord(m *machine.Machine, user string) (SSH, error) {
	c := m.SSH()
	if c == nil {
		return SSH{}, errors.New("instance: the guest has no SSH connection")
	}
	key := filepath.Join(m.RunDir(), "ssh", "id_ed25519")
	kh := filepath.Join(m.RunDir(), "ssh", "known_hosts")
	if err := sshx.WriteKnownHosts(kh, c.Addr(), c.HostKey()); err != nil {
		return SSH{}, err
	}
	return SSH{Addr: c.Addr(), User: user, Key: key, KnownHosts: kh,
		HostKey: strings.TrimSpace(string(sshMarshal(c.HostKey())))}, nil
}

// defaultName turns a template name into an instance name.
func defaultName(template string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(template) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	n := strings.Trim(b.String(), "-")
	if len(n) > 28 {
		n = strings.Trim(n[:28], "-")
	}
	if n == "" {
		n = "guest"
	}
	return n
}
