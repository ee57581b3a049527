package instance

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/guestcatalog/guestcatalog/framework/fsutil"
	"github.com/guestcatalog/guestcatalog/framework/netpolicy"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
)

// The egress proxy of an `up` instance (a template with egress: proxy)
// must outlive the CLI, as QEMU does. Up therefore starts it as a helper
// process of its own: the catalog binary again, with the hidden command
// ProxyHelperCommand, in a session of its own (setsid: no terminal
// signal reaches it). It serves the same netpolicy proxy with the same
// allowlist (ProxyConfigFile in the instance directory), prints its
// address on its stdout once it listens (Up puts that address on QEMU's
// command line, in the guestfwd relay), logs every decision to
// logs/ProxyLogFile, and exits on SIGTERM/SIGINT or as soon as the
// instance is gone: its record removed or replaced, or Record.Status dead
// (the starting process died before the guest was ready, or QEMU — the
// recorded pid and start time — exited). Down stops it after QEMU; Gc
// kills the helper of a dead instance and never a live one's.

// ProxyHelperCommand is the hidden catalog command that serves an
// instance's egress proxy (ServeProxy).
const ProxyHelperCommand = "__netproxy"

// ProxyConfigFile holds the helper's proxy options, in the instance dir.
const ProxyConfigFile = "proxy.json"

// ProxyLogFile is the helper's log (one JSON line per decision, and its
// own errors), in the instance's logs directory.
const ProxyLogFile = "proxy.log"

// ProxyConfig is ProxyConfigFile.
type ProxyConfig struct {
	Allow        []string `json:"allow"`
	HostLoopback bool     `json:"hostLoopback"`
}

// Bounds of the helper.
const (
	// proxyPoll is how often the helper checks that its instance lives.
	proxyPoll = 200 * time.Millisecond
	// proxyStartTimeout bounds the wait for the helper's address.
	proxyStartTimeout = 10 * time.Second
	// proxyStopGrace is how long Down waits after SIGTERM before SIGKILL.
	proxyStopGrace = 2 * time.Second
)

// DefaultProxyHelper is the helper's command when UpInput.ProxyHelper is
// empty: this executable, with ProxyHelperCommand (the catalog binary
// serves it; a test binary serves it from its TestMain).
func DefaultProxyHelper() ([]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("instance: locating the proxy helper: %w", err)
	}
	return []string{exe, ProxyHelperCommand}, nil
}

// startProxyHelper writes the helper's config into dir, starts argv
// --instance-dir dir detached, and returns the helper and the address it
// listens on. If anything fails the helper is stopped.
func startProxyHelper(ctx context.Context, argv []string, dir string, pc ProxyConfig) (Proc, string, error) {
	if len(argv) == 0 {
		var err error
		if argv, err = DefaultProxyHelper(); err != nil {
			return Proc{}, "", err
		}
	}
	b, err := json.MarshalIndent(pc, "", "  ")
	if err != nil {
		return Proc{}, "", err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, ProxyConfigFile), append(b, '\n'), 0o600); err != nil {
		return Proc{}, "", err
	}
	logs := filepath.Join(dir, LogsDir)
	if err := os.MkdirAll(logs, 0o700); err != nil {
		return Proc{}, "", err
	}
	logf, err := os.OpenFile(filepath.Join(logs, ProxyLogFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return Proc{}, "", err
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], append(append([]string(nil), argv[1:]...), "--instance-dir", dir)...)
	cmd.Dir = "/"
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return Proc{}, "", err
	}
	if err := cmd.Start(); err != nil {
		return Proc{}, "", fmt.Errorf("starting the egress proxy helper: %w", err)
	}
	type line struct {
		s   string
		err error
	}
	got := make(chan line, 1)
	go func() {
		s, err := bufio.NewReader(out).ReadString('\n')
		got <- line{strings.TrimSpace(s), err}
		// Reap it if it ends while this process lives (a zombie would
		// keep its pid); the CLI usually exits first.
		_ = cmd.Wait()
	}()
	p := Proc{PID: cmd.Process.Pid}
	fail := func(err error) (Proc, string, error) {
		_ = cmd.Process.Kill()
		return Proc{}, "", fmt.Errorf("egress proxy helper: %w (its log: %s)", err, filepath.Join(logs, ProxyLogFile))
	}
	timer := time.NewTimer(proxyStartTimeout)
	defer timer.Stop()
	select {
	case l := <-got:
		if l.s == "" {
			return fail(fmt.Errorf("exited before listening: %v", l.err))
		}
		st, err := qemu.ProcessStart(p.PID)
		if err != nil {
			return fail(err)
		}
		p.Start = st
		return p, l.s, nil
	case <-timer.C:
		return fail(fmt.Errorf("no address within %s", proxyStartTimeout))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
}

// ServeProxy is the helper's body: it serves the proxy of the instance
// directory dir, writes its address and a newline to report once it
// listens, logs to logw, and returns when ctx ends or the instance is
// gone (see the comment at the top of this file), with the proxy closed.
func ServeProxy(ctx context.Context, dir string, report io.Writer, logw io.Writer) error {
	b, err := os.ReadFile(filepath.Join(dir, ProxyConfigFile))
	if err != nil {
		return err
	}
	var pc ProxyConfig
	if err := json.Unmarshal(b, &pc); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, ProxyConfigFile), err)
	}
	first, err := ReadRecord(dir)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(logw, nil)).With("instance", first.Name)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p, err := netpolicy.Start(ctx, netpolicy.Options{Allow: pc.Allow, HostLoopback: pc.HostLoopback, Logger: logger})
	if err != nil {
		return err
	}
	defer p.Close()
	if _, err := fmt.Fprintln(report, p.Addr()); err != nil {
		return err
	}
	logger.Info("proxy listening", "addr", p.Addr(), "pid", os.Getpid())
	why := waitInstanceGone(ctx, dir, first.Creator)
	logger.Info("proxy stopping", "why", why)
	return nil
}

// waitInstanceGone returns why the helper should stop: ctx ended, or the
// instance of dir (reserved by creator) is gone.
func waitInstanceGone(ctx context.Context, dir string, creator Proc) string {
	t := time.NewTicker(proxyPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return "signal"
		case <-t.C:
		}
		r, err := ReadRecord(dir)
		switch {
		case err != nil:
			return "record: " + err.Error()
		case r.Creator != creator:
			return "the instance was replaced"
		case r.Status() == Dead:
			return "the instance is dead: " + deadReason(r)
		}
	}
}

// stopProxyHelper ends the helper p (pid and start time both match):
// SIGTERM, up to proxyStopGrace, then SIGKILL.
func stopProxyHelper(p Proc) error {
	if !p.Alive() {
		return nil
	}
	_ = syscall.Kill(p.PID, syscall.SIGTERM)
	if waitGone(context.Background(), p, proxyStopGrace) {
		return nil
	}
	if p.Alive() {
		_ = syscall.Kill(p.PID, syscall.SIGKILL)
	}
	if !waitGone(context.Background(), p, 5*time.Second) {
		return fmt.Errorf("egress proxy helper pid %d survived SIGKILL", p.PID)
	}
	return nil
}

// orphanHelpers finds the proxy helpers of this store (their command line
// is ProxyHelperCommand --instance-dir <store>/NAME) that no live
// instance's record names: their directory is gone or names another
// helper, or the instance is dead. A helper normally exits by itself
// then; Gc kills one that did not (stopped, hung).
func (s *Store) orphanHelpers() []orphanHelper {
	des, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []orphanHelper
	for _, de := range des {
		pid, err := strconv.Atoi(de.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + de.Name() + "/cmdline")
		if err != nil {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		dir, ok := helperDir(argv)
		if !ok || filepath.Dir(dir) != s.dir {
			continue
		}
		st, err := qemu.ProcessStart(pid)
		if err != nil {
			continue
		}
		p := Proc{PID: pid, Start: st}
		r, err := ReadRecord(dir)
		switch {
		case errors.Is(err, os.ErrNotExist):
			// its instance was removed
		case err != nil:
			continue // not provably gone
		case r.Status() == Starting:
			continue // its up may not have recorded it yet
		case r.Status() == Running && r.Proxy == p:
			continue
		}
		out = append(out, orphanHelper{Proc: p, Dir: dir})
	}
	return out
}

// orphanHelper is a proxy helper whose instance is gone.
type orphanHelper struct {
	Proc
	Dir string
}

// helperDir returns the instance dir of a proxy helper's argv.
func helperDir(argv []string) (string, bool) {
	if len(argv) != 4 || argv[1] != ProxyHelperCommand || argv[2] != "--instance-dir" || !filepath.IsAbs(argv[3]) {
		return "", false
	}
	return filepath.Clean(argv[3]), true
}
