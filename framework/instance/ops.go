package instance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/guestcatalog/guestcatalog/framework/exec"
	"github.com/guestcatalog/guestcatalog/framework/intervals"
	"github.com/guestcatalog/guestcatalog/framework/machine"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
	"github.com/guestcatalog/guestcatalog/framework/sshx"
)

func sshMarshal(k ssh.PublicKey) []byte { return ssh.MarshalAuthorizedKey(k) }

// ErrNotRunning: the instance's QEMU is gone (see Record.Status).
var ErrNotRunning = errors.New("instance is not running")

// Dial connects to the instance's sshd as its user, with its key, pinned
// to its host key.
func (i *Instance) Dial(ctx context.Context) (*sshx.Client, error) {
	if st := i.Status(); st != Running {
		return nil, fmt.Errorf("%s is %s: %w", i.Name, st, ErrNotRunning)
	}
	pem, err := os.ReadFile(i.SSH.Key)
	if err != nil {
		return nil, fmt.Errorf("%s: reading its key: %w", i.Name, err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return nil, fmt.Errorf("%s: its key: %w", i.Name, err)
	}
	hostKey, err := sshx.ParsePublicKey(i.SSH.HostKey)
	if err != nil {
		return nil, fmt.Errorf("%s: its host key: %w", i.Name, err)
	}
	// A guest on a busy host can take long to send its banner: retry a
	// transient failure (never a wrong host key or a refused key) within
	// default/wait-ssh, as the boot's ssh phase does.
	bound := 3 * time.Minute
	if ivs, err := intervals.Default(); err == nil {
		if d, err := ivs.Get(machine.IntervalSSH, i.Accel); err == nil {
			bound = d
		}
	}
	dctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	c, err := sshx.WaitDial(dctx, i.SSH.Addr, i.SSH.User, signer, hostKey, sshx.Options{
		IdentityFile: i.SSH.Key, KnownHostsFile: i.SSH.KnownHosts, ConnectTimeout: 10 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", i.Name, err)
	}
	return c, nil
}

// SSHCommand is an `ssh` command line that enters the instance, pinned to
// its host key.
func (i *Instance) SSHCommand() string {
	hk, _ := sshx.ParsePublicKey(i.SSH.HostKey)
	return sshx.SSHCommand(i.SSH.Addr, i.SSH.User, i.SSH.Key, i.SSH.KnownHosts, hk)
}

// Streams are the caller's standard streams; Terminal (nil: none) asks for
// a PTY in the guest.
type Streams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Terminal       *sshx.Terminal
}

// Exec runs args in the guest as the instance's user (each argument
// quoted, as `docker exec` passes them; no args: the login shell) and
// returns its exit status.
func (i *Instance) Exec(ctx context.Context, args []string, st Streams) (int, error) {
	c, err := i.Dial(ctx)
	if err != nil {
		return -1, err
	}
	defer c.Close()
	return stream(ctx, c, args, st)
}

func stream(ctx context.Context, c *sshx.Client, args []string, st Streams) (int, error) {
	line := ""
	if len(args) > 0 {
		var err error
		if line, err = (exec.Cmd{Args: args}).ShellLine(); err != nil {
			return -1, err
		}
	}
	return c.Stream(ctx, line, st.Stdin, st.Stdout, st.Stderr, st.Terminal)
}

// Location is one side of a copy: a host path, or a path in an instance
// ("INST:path").
type Location struct {
	Instance string // "" : the host
	Path     string
}

// ParseLocation reads "INST:path" (a path in the instance) or a host path.
// A host path with a colon is written with a slash before it (./a:b).
func ParseLocation(s string) (Location, error) {
	if s == "" {
		return Location{}, errors.New("empty path")
	}
	i := strings.IndexByte(s, ':')
	if i < 0 || strings.ContainsRune(s[:i], '/') {
		return Location{Path: s}, nil
	}
	l := Location{Instance: s[:i], Path: s[i+1:]}
	if err := ValidName(l.Instance); err != nil {
		return Location{}, fmt.Errorf("%q: %w", s, err)
	}
	if l.Path == "" {
		return Location{}, fmt.Errorf("%q: no path after %q", s, l.Instance+":")
	}
	return l, nil
}

// CopyTo copies a host file into the instance. A remote path ending in
// "/" or naming a directory receives the file under its own name.
func (i *Instance) CopyTo(ctx context.Context, local, remote string) error {
	f, err := os.Open(local)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory: cp copies files", local)
	}
	c, err := i.Dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	remote, err = remoteTarget(ctx, c, remote, filepath.Base(local))
	if err != nil {
		return err
	}
	return c.Upload(ctx, f, remote, fi.Mode().Perm())
}

// remoteTarget appends name to a remote directory path.
func remoteTarget(ctx context.Context, c *sshx.Client, remote, name string) (string, error) {
	if strings.HasSuffix(remote, "/") {
		return remote + name, nil
	}
	res, err := c.Run(ctx, exec.Cmd{Args: []string{"test", "-d", remote}})
	if err == nil && res.ExitCode == 0 {
		return path.Join(remote, name), nil
	}
	var re *exec.RunError
	if err != nil && !(errors.As(err, &re) && re.Result.ExitCode == 1) {
		return "", err
	}
	return remote, nil
}

// CopyFrom copies a file from the instance to the host (written through a
// temporary file, so an interrupted copy leaves no partial file). A local
// path naming a directory receives the file under its own name.
func (i *Instance) CopyFrom(ctx context.Context, remote, local string) (err error) {
	if fi, serr := os.Stat(local); serr == nil && fi.IsDir() {
		local = filepath.Join(local, path.Base(remote))
	}
	c, err := i.Dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	tmp, err := os.CreateTemp(filepath.Dir(local), "."+filepath.Base(local)+".cp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = c.Download(ctx, remote, tmp); err != nil {
		return err
	}
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), local)
}

// DownInput bounds Down.
type DownInput struct {
	// Intervals: default/shutdown (how long the guest gets to power off
	// after ACPI powerdown) and default/kill-grace (after quit, before
	// SIGKILL), scaled by the instance's accelerator.
	Intervals *intervals.Set
	// Force skips the powerdown: quit, then SIGKILL.
	Force bool
}

// DownResult says how the instance ended.
type DownResult struct {
	// How: powerdown (the guest powered off), quit, kill, or gone (QEMU
	// was already dead).
	How      string
	Duration time.Duration
}

// Down stops the instance, gracefully first: an ACPI powerdown and up to
// default/shutdown for the guest to power off, then QMP quit and up to
// default/kill-grace, then SIGKILL (to the recorded QEMU only: pid and
// start time both match). Then it removes the instance's directory.
// An instance whose QEMU is already dead is just removed.
func (s *Store) Down(ctx context.Context, name string, in DownInput) (DownResult, error) {
	start := time.Now()
	i, err := s.Get(name)
	if err != nil {
		return DownResult{}, err
	}
	ivs := in.Intervals
	if ivs == nil {
		if ivs, err = intervals.Default(); err != nil {
			return DownResult{}, err
		}
	}
	res := DownResult{How: "gone"}
	switch i.Status() {
	case Starting:
		return res, fmt.Errorf("%s is being started by pid %d: %w", name, i.Creator.PID, ErrBusy)
	case Running:
		res.How, err = stopQEMU(ctx, i.QEMU, i.QMPSocket, i.Accel, ivs, in.Force)
		if err != nil {
			return res, fmt.Errorf("stopping %s: %w", name, err)
		}
	case Dead:
		if err := killOrphan(i); err != nil {
			return res, err
		}
	}
	// The proxy helper exits by itself once QEMU is gone; stop it now,
	// bounded, so that nothing is left when Down returns.
	if err := stopProxyHelper(i.Proxy); err != nil {
		return res, fmt.Errorf("stopping %s: %w", name, err)
	}
	if err := os.RemoveAll(i.Dir); err != nil {
		return res, fmt.Errorf("removing %s: %w", i.Dir, err)
	}
	res.Duration = time.Since(start)
	return res, nil
}

// ErrBusy: another process is starting the instance.
var ErrBusy = errors.New("instance is busy")

// stopQEMU escalates powerdown → quit → SIGKILL until p is gone.
func stopQEMU(ctx context.Context, p Proc, socket, accel string, ivs *intervals.Set, force bool) (string, error) {
	grace, err := ivs.Get(machine.IntervalShutdown, accel)
	if err != nil {
		return "", err
	}
	killGrace, err := ivs.Get("default/kill-grace", accel)
	if err != nil {
		return "", err
	}
	if !force {
		qctx, cancel := context.WithTimeout(ctx, min(grace, 5*time.Second))
		_, err := qemu.QMPCommand(qctx, socket, "system_powerdown", nil)
		cancel()
		if err == nil && waitGone(ctx, p, grace) {
			return "powerdown", nil
		}
	}
	if ctx.Err() == nil {
		qctx, cancel := context.WithTimeout(ctx, killGrace)
		_, err := qemu.QMPCommand(qctx, socket, "quit", nil)
		cancel()
		if err == nil && waitGone(ctx, p, killGrace) {
			return "quit", nil
		}
	}
	if p.Alive() {
		_ = syscall.Kill(p.PID, syscall.SIGKILL)
	}
	if !waitGone(context.WithoutCancel(ctx), p, 10*time.Second) {
		return "", fmt.Errorf("qemu pid %d survived SIGKILL", p.PID)
	}
	return "kill", nil
}

// waitGone polls until p has exited, for at most d or until ctx ends.
func waitGone(ctx context.Context, p Proc, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for p.Alive() {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return !p.Alive()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return true
}

// killOrphan kills a QEMU left by an Up that died before the guest was
// ready: the run dir's owner record (framework/qemu) names it.
func killOrphan(i *Instance) error {
	var procs []Proc
	if i.QEMU.PID > 0 {
		procs = append(procs, i.QEMU)
	}
	des, _ := os.ReadDir(i.Dir)
	for _, de := range des {
		if !de.IsDir() {
			continue
		}
		if o, err := qemu.ReadOwner(filepath.Join(i.Dir, de.Name())); err == nil && o.QEMUPID > 0 && (o.BootID == "" || o.BootID == qemu.BootID()) {
			procs = append(procs, Proc{PID: o.QEMUPID, Start: o.QEMUStart})
		}
	}
	for _, p := range procs {
		if p.Alive() {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
			if !waitGone(context.Background(), p, 10*time.Second) {
				return fmt.Errorf("%s: qemu pid %d survived SIGKILL", i.Name, p.PID)
			}
		}
	}
	if err := stopProxyHelper(i.Proxy); err != nil {
		return fmt.Errorf("%s: %w", i.Name, err)
	}
	return nil
}
