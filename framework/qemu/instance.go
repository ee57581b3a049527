package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/digitalocean/go-qemu/qmp"

	"github.com/guestcatalog/guestcatalog/framework/console"
	"github.com/guestcatalog/guestcatalog/framework/intervals"
)

// Log file names in the log dir.
const (
	SerialLogName = "serial.log"
	QEMULogName   = "qemu.log" // QEMU's stdout and stderr
	EventsName    = "qmp-events.jsonl"
)

// ErrExited is returned by QMP calls once QEMU has exited.
var ErrExited = errors.New("qemu has exited")

// Option configures Start and Launch.
type Option func(*startConfig)

type startConfig struct {
	log       *slog.Logger
	runRoot   string
	runDir    *RunDir
	logDir    string
	intervals *intervals.Set
	kvmStall  time.Duration
	detached  bool
	freePort  func() (int, error) // FreePort; tests lose the race on purpose
}

// withFreePort replaces FreePort (tests).
func withFreePort(f func() (int, error)) Option {
	return func(c *startConfig) { c.freePort = f }
}

// WithLogger logs lifecycle steps (silent by default).
func WithLogger(l *slog.Logger) Option {
	return func(c *startConfig) {
		if l != nil {
			c.log = l
		}
	}
}

// WithRunRoot creates the run dir under root instead of DefaultRunRoot().
func WithRunRoot(root string) Option { return func(c *startConfig) { c.runRoot = root } }

// WithRunDir uses the caller's run dir (for example one that also holds
// the overlay, so that Gc removes it after a crash). The caller removes
// it; Shutdown removes only the transient files.
func WithRunDir(rd *RunDir) Option { return func(c *startConfig) { c.runDir = rd } }

// WithLogDir writes serial.log, qemu.log and qmp-events.jsonl to dir
// (artifacts) instead of the run dir, which Shutdown removes.
func WithLogDir(dir string) Option { return func(c *startConfig) { c.logDir = dir } }

// WithIntervals sets the intervals used (default intervals.Default()):
// default/qmp-connect, default/kill-grace, accel/kvm-stall.
func WithIntervals(s *intervals.Set) Option { return func(c *startConfig) { c.intervals = s } }

// WithDetached starts QEMU so that it can outlive this process: its own
// session, no parent-death signal, stdin from /dev/null (see
// startProcess). Until Detach it is supervised as usual (ctx, Shutdown,
// Kill); after Detach it runs on by itself. Only for guests meant to
// keep running after the command that started them (framework/instance);
// everything else keeps the default, which makes QEMU die with us.
func WithDetached() Option { return func(c *startConfig) { c.detached = true } }

// WithKVMStall overrides interval accel/kvm-stall for Launch.
func WithKVMStall(d time.Duration) Option { return func(c *startConfig) { c.kvmStall = d } }

func newConfig(opts []Option) (*startConfig, error) {
	c := &startConfig{log: slog.New(slog.DiscardHandler), freePort: FreePort}
	for _, o := range opts {
		o(c)
	}
	if c.intervals == nil {
		s, err := intervals.Default()
		if err != nil {
			return nil, fmt.Errorf("loading intervals: %w", err)
		}
		c.intervals = s
	}
	return c, nil
}

// Event is a QMP event.
type Event struct {
	Name string         `json:"event"`
	Data map[string]any `json:"data,omitempty"`
	// Time is QEMU's timestamp; Received is when it was read.
	Time     time.Time `json:"time"`
	Received time.Time `json:"received"`
}

// ExitError describes how QEMU ended when it did not exit 0.
type ExitError struct {
	Code   int    // -1 when a signal ended it
	Signal string // "killed", …
	// Requested: this package killed it (shutdown escalation, cancelled
	// context), so the signal is no fault of QEMU's.
	Requested bool
	// Stderr holds the last lines QEMU wrote to stderr/stdout.
	Stderr []string
}

func (e *ExitError) Error() string {
	var b strings.Builder
	if e.Signal != "" {
		fmt.Fprintf(&b, "qemu killed by signal %s", e.Signal)
	} else {
		fmt.Fprintf(&b, "qemu exited with status %d", e.Code)
	}
	if l := e.lastLine(); l != "" {
		fmt.Fprintf(&b, ": %s", l)
	}
	return b.String()
}

// lastLine is the most telling stderr line: QEMU's last "error:" line if
// any, else its last line, without the "qemu-system-x86_64: " prefix and
// ignoring "terminating on signal".
func (e *ExitError) lastLine() string {
	var last string
	for i := len(e.Stderr) - 1; i >= 0; i-- {
		l := strings.TrimSpace(e.Stderr[i])
		if l == "" || strings.Contains(l, "terminating on signal") {
			continue
		}
		if strings.HasPrefix(l, "qemu-system-") {
			if j := strings.Index(l, ": "); j > 0 {
				l = l[j+2:]
			}
		}
		if strings.HasPrefix(l, "error: ") {
			return l
		}
		if last == "" {
			last = l
		}
	}
	return last
}

// Instance is a running (or exited) QEMU process with its QMP connection.
type Instance struct {
	spec      Spec
	argv      []string
	log       *slog.Logger
	ivs       *intervals.Set
	rd        *RunDir
	ownRunDir bool
	logDir    string
	qemuLog   string
	started   time.Time

	proc    *process
	exited  chan struct{} // closed once reaped and exitErr is set
	exitErr error

	mon        *qmp.SocketMonitor
	version    string
	pkgVersion string

	evMu     sync.Mutex
	events   []Event
	evNotify chan struct{}
	evFile   *os.File
	evDone   chan struct{}

	stopMu    sync.Mutex
	stopping  bool
	requested bool   // this package asked QEMU to end
	how       string // the last stop action sent: powerdown, quit, kill
	endedBy   string // how it ended: exited (by itself), powerdown, quit, kill
	cleaned   bool
	stopCtx   func() bool
	detached  bool // started WithDetached
	released  bool // Detach let go of it
}

// Start starts QEMU for spec (Accel must be kvm or tcg) and connects QMP.
// ctx bounds the process: when it ends, QEMU is stopped (quit, then
// SIGKILL). Empty paths of the spec are filled from a run dir, host ports
// left 0 get free ports. Always call Shutdown, even after QEMU exited by
// itself: it removes the transient files and an owned run dir.
func Start(ctx context.Context, spec Spec, opts ...Option) (*Instance, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return startArmed(ctx, spec, cfg)
}

func start(ctx context.Context, spec Spec, cfg *startConfig) (*Instance, error) {
	spec = spec.withDefaults()
	if spec.Accel != AccelKVM && spec.Accel != AccelTCG {
		return nil, fmt.Errorf("starting qemu: accel %q: want %s or %s (Launch resolves %s)", spec.Accel, AccelKVM, AccelTCG, AccelAuto)
	}
	rd, own := cfg.runDir, false
	if rd == nil {
		var err error
		if rd, err = NewRunDir(cfg.runRoot, spec.Name); err != nil {
			return nil, fmt.Errorf("starting qemu: %w", err)
		}
		own = true
	}
	inst, err := startIn(ctx, spec, cfg, rd)
	if err != nil {
		if own {
			rd.Remove()
		}
		return nil, err
	}
	inst.ownRunDir = own
	return inst, nil
}

func startIn(ctx context.Context, spec Spec, cfg *startConfig, rd *RunDir) (*Instance, error) {
	logDir := cfg.logDir
	if logDir == "" {
		logDir = rd.Path()
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("starting qemu: %w", err)
	}
	if spec.QMPSocket == "" {
		spec.QMPSocket = rd.File(QMPSocketName)
	}
	if spec.PIDFile == "" {
		spec.PIDFile = rd.File(PIDFileName)
	}
	if spec.SerialLog == "" {
		spec.SerialLog = filepath.Join(logDir, SerialLogName)
	}
	if spec.usesUEFI() && spec.FirmwareVars == "" {
		spec.FirmwareVars = rd.File("efivars.qcow2")
		if err := CreateUEFIVars(ctx, spec.Arch, "", spec.FirmwareVars); err != nil {
			return nil, fmt.Errorf("starting qemu: %w", err)
		}
	}
	var auto []int
	for i, f := range spec.Forwards {
		if f.HostPort == 0 {
			auto = append(auto, i)
		}
	}
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		if err := assignPorts(spec.Forwards, auto, cfg.freePort); err != nil {
			return nil, fmt.Errorf("starting qemu: %w", err)
		}
		argv, err := Cmdline(spec)
		if err != nil {
			return nil, err
		}
		inst, err := launchProcess(ctx, spec, argv, cfg, rd, logDir)
		if err == nil {
			return inst, nil
		}
		lastErr = err
		var ee *ExitError
		if len(auto) == 0 || !errors.As(err, &ee) || !slices.ContainsFunc(ee.Stderr, func(l string) bool {
			return strings.Contains(l, "Could not set up host forwarding rule")
		}) {
			break
		}
		cfg.log.Info("qemu lost the race for a free port; retrying with new ports", "err", err)
	}
	return nil, lastErr
}

func assignPorts(fw []Forward, idx []int, freePort func() (int, error)) error {
	for _, i := range idx {
		p, err := freePort()
		if err != nil {
			return err
		}
		fw[i].HostPort = p
	}
	return nil
}

func launchProcess(ctx context.Context, spec Spec, argv []string, cfg *startConfig, rd *RunDir, logDir string) (*Instance, error) {
	os.Remove(spec.QMPSocket)
	os.Remove(spec.PIDFile)
	qemuLog := filepath.Join(logDir, QEMULogName)
	out, err := os.OpenFile(qemuLog, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("starting qemu: %w", err)
	}
	evPath := filepath.Join(logDir, EventsName)
	evFile, err := os.OpenFile(evPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		out.Close()
		return nil, fmt.Errorf("starting qemu: %w", err)
	}
	cfg.log.Info("starting qemu", "name", spec.Name, "accel", spec.Accel, "argv", strings.Join(argv, " "))
	proc, err := startProcess(argv, out, cfg.detached)
	out.Close() // the child has its own descriptor
	if err != nil {
		evFile.Close()
		return nil, err
	}
	inst := &Instance{
		spec: spec, argv: argv, log: cfg.log, ivs: cfg.intervals, rd: rd,
		logDir: logDir, qemuLog: qemuLog, started: time.Now(),
		proc: proc, exited: make(chan struct{}), detached: cfg.detached,
		evNotify: make(chan struct{}), evFile: evFile, evDone: make(chan struct{}),
	}
	if err := rd.setQEMU(proc.pid, argv); err != nil {
		cfg.log.Warn("recording qemu pid", "err", err)
	}
	go inst.reap()

	if err := inst.connect(ctx); err != nil {
		inst.stopNow()
		<-inst.exited
		inst.cleanup(false)
		var ee *ExitError
		if errors.As(inst.exitErr, &ee) && !ee.Requested {
			return nil, fmt.Errorf("starting qemu: %w", inst.exitErr)
		}
		return nil, fmt.Errorf("starting qemu: %w", err)
	}
	return inst, nil
}

// reap waits for the process, records how it ended, and tidies up QMP.
func (i *Instance) reap() {
	<-i.proc.done
	i.stopMu.Lock()
	requested := i.requested
	i.endedBy = i.how
	if i.endedBy == "" {
		i.endedBy = "exited"
	}
	i.stopMu.Unlock()
	tail, _ := console.Tail(i.qemuLog, 20)
	if st := i.proc.state; st == nil {
		i.exitErr = &ExitError{Code: -1, Stderr: tail, Requested: requested}
		if i.proc.err != nil {
			i.exitErr = fmt.Errorf("waiting for qemu: %w", i.proc.err)
		}
	} else if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		i.exitErr = &ExitError{Code: -1, Signal: ws.Signal().String(), Stderr: tail, Requested: requested}
	} else if st.ExitCode() != 0 {
		i.exitErr = &ExitError{Code: st.ExitCode(), Stderr: tail, Requested: requested}
	}
	i.log.Info("qemu exited", "name", i.spec.Name, "how", i.endedBy, "err", i.exitErr)
	close(i.exited)
}

// connect waits for the QMP socket and does the handshake, bounded by
// interval default/qmp-connect. go-qemu's Connect has no timeout: it runs
// in a goroutine and the connection is closed if it takes too long.
func (i *Instance) connect(ctx context.Context) error {
	timeout, err := connectTimeout(i.ivs, i.spec)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		mon, err := qmp.NewSocketMonitor("unix", i.spec.QMPSocket, time.Second)
		if err == nil {
			done := make(chan error, 1)
			go func() { done <- mon.Connect() }()
			select {
			case err = <-done:
			case <-cctx.Done():
				mon.Disconnect()
				<-done
				err = cctx.Err()
			case <-i.exited:
				mon.Disconnect()
				<-done
				return ErrExited
			}
			if err != nil {
				mon.Disconnect()
				// QEMU closing the socket mid-handshake usually means it
				// is exiting (a bad option found late): report the exit.
				select {
				case <-i.exited:
					return ErrExited
				case <-time.After(time.Second):
				}
				return fmt.Errorf("qmp handshake on %s: %w", i.spec.QMPSocket, err)
			}
			i.mon = mon
			if mon.Version != nil {
				i.version = mon.Version.String()
				i.pkgVersion = strings.TrimSpace(mon.Version.Package)
			}
			// Drain events from their own goroutine, always: go-qemu's
			// event channel is unbuffered and a stalled reader blocks
			// command replies.
			evs, err := mon.Events(context.Background())
			if err != nil {
				close(i.evDone)
				return fmt.Errorf("qmp events: %w", err)
			}
			go i.pumpEvents(evs)
			return nil
		}
		// Not listening yet (no socket, or refused): try again shortly.
		select {
		case <-i.exited:
			return ErrExited
		case <-cctx.Done():
			return fmt.Errorf("no qmp greeting on %s within %s: %w", i.spec.QMPSocket, timeout, cctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (i *Instance) pumpEvents(evs <-chan qmp.Event) {
	defer close(i.evDone)
	for e := range evs {
		ev := Event{
			Name:     e.Event,
			Data:     e.Data,
			Time:     time.Unix(e.Timestamp.Seconds, e.Timestamp.Microseconds*1000),
			Received: time.Now(),
		}
		i.evMu.Lock()
		i.events = append(i.events, ev)
		close(i.evNotify)
		i.evNotify = make(chan struct{})
		if i.evFile != nil {
			if b, err := json.Marshal(ev); err == nil {
				i.evFile.Write(append(b, '\n'))
			}
		}
		i.evMu.Unlock()
	}
}

// connectTimeout bounds the wait for QMP's greeting: default/qmp-connect,
// or for a spec that resumes a snapshot the longer default/loadvm. QEMU
// loads a -loadvm snapshot (the guest's RAM) before its main loop runs, so
// it greets only afterwards; on a busy host that took 17-28 s under TCG,
// past qmp-connect's 30 s more than once.
func connectTimeout(ivs *intervals.Set, spec Spec) (time.Duration, error) {
	d, err := ivs.Get("default/qmp-connect", spec.Accel)
	if err != nil || (spec.LoadVM == "" && !spec.Incoming) {
		return d, err
	}
	l, err := ivs.Get("default/loadvm", spec.Accel)
	if err != nil {
		return 0, err
	}
	return max(d, l), nil
}

// armContext stops QEMU when ctx ends (quit, then SIGKILL).
func (i *Instance) armContext(ctx context.Context) {
	i.stopMu.Lock()
	defer i.stopMu.Unlock()
	i.stopCtx = context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		i.Shutdown(sctx, 0)
	})
}

// Spec returns the spec QEMU runs with (paths and ports filled in).
func (i *Instance) Spec() Spec { return i.spec }

// Argv returns QEMU's command line.
func (i *Instance) Argv() []string { return slices.Clone(i.argv) }

// PID of the QEMU process.
func (i *Instance) PID() int { return i.proc.pid }

// RunDir is the run dir's path.
func (i *Instance) RunDir() string { return i.rd.Path() }

// SerialLog is the serial console log.
func (i *Instance) SerialLog() string { return i.spec.SerialLog }

// QEMULog holds QEMU's stdout and stderr.
func (i *Instance) QEMULog() string { return i.qemuLog }

// LogDir holds serial.log, qemu.log and qmp-events.jsonl.
func (i *Instance) LogDir() string { return i.logDir }

// Started is when the process started.
func (i *Instance) Started() time.Time { return i.started }

// HostPort returns the host port forwarded to a guest TCP port (0: none).
func (i *Instance) HostPort(guestPort int) int {
	for _, f := range i.spec.Forwards {
		if f.Proto == "tcp" && f.GuestPort == guestPort {
			return f.HostPort
		}
	}
	return 0
}

// Version is the QEMU version from the QMP greeting ("7.2.22");
// PackageVersion the distribution's package version.
func (i *Instance) Version() string        { return i.version }
func (i *Instance) PackageVersion() string { return i.pkgVersion }

// Exited is closed once QEMU has exited and been reaped.
func (i *Instance) Exited() <-chan struct{} { return i.exited }

// Err is nil while QEMU runs and after it exited with status 0; else an
// *ExitError with the exit status and the last lines of QEMU's stderr.
func (i *Instance) Err() error {
	select {
	case <-i.exited:
		return i.exitErr
	default:
		return nil
	}
}

// Wait blocks until QEMU exits (returns Err()) or ctx ends.
func (i *Instance) Wait(ctx context.Context) error {
	select {
	case <-i.exited:
		return i.exitErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// How says how QEMU ended: "" while it runs, then exited (by itself),
// powerdown, quit or kill.
func (i *Instance) How() string {
	select {
	case <-i.exited:
		i.stopMu.Lock()
		defer i.stopMu.Unlock()
		return i.endedBy
	default:
		return ""
	}
}

// Events returns the QMP events received so far.
func (i *Instance) Events() []Event {
	i.evMu.Lock()
	defer i.evMu.Unlock()
	return slices.Clone(i.events)
}

// WaitEvent returns the first event (since QEMU started) named one of
// names, waiting for it if needed.
func (i *Instance) WaitEvent(ctx context.Context, names ...string) (Event, error) {
	seen := 0
	// scan looks at the events not seen yet; without a match it returns
	// the channel closed on the next event.
	scan := func() (Event, bool, <-chan struct{}) {
		i.evMu.Lock()
		defer i.evMu.Unlock()
		for ; seen < len(i.events); seen++ {
			if slices.Contains(names, i.events[seen].Name) {
				return i.events[seen], true, nil
			}
		}
		return Event{}, false, i.evNotify
	}
	ended := false
	for {
		e, ok, next := scan()
		if ok {
			return e, nil
		}
		if ended {
			return Event{}, fmt.Errorf("waiting for qmp event %s: %w", strings.Join(names, "/"), ErrExited)
		}
		select {
		case <-next:
		case <-i.evDone:
			ended = true // the stream ended (QEMU exited): look once more
		case <-ctx.Done():
			return Event{}, fmt.Errorf("waiting for qmp event %s: %w", strings.Join(names, "/"), ctx.Err())
		}
	}
}

// Execute runs a QMP command and returns its "return" value.
func (i *Instance) Execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	if i.mon == nil {
		return nil, fmt.Errorf("qmp %s: not connected", command)
	}
	b, err := json.Marshal(qmp.Command{Execute: command, Args: args})
	if err != nil {
		return nil, err
	}
	type result struct {
		out []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		out, err := i.mon.Run(b)
		ch <- result{out, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		return nil, fmt.Errorf("qmp %s: %w", command, ctx.Err())
	case <-i.exited:
		select { // a reply may have raced the exit (quit)
		case r = <-ch:
		case <-time.After(100 * time.Millisecond):
			return nil, fmt.Errorf("qmp %s: %w", command, ErrExited)
		}
	}
	if r.err != nil {
		if i.proc.exited() {
			return nil, fmt.Errorf("qmp %s: %w", command, ErrExited)
		}
		return nil, fmt.Errorf("qmp %s: %w", command, r.err)
	}
	var resp struct {
		Return json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal(r.out, &resp); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	return resp.Return, nil
}

// Status returns QEMU's run state (query-status): running, paused,
// shutdown, inmigrate, …
func (i *Instance) Status(ctx context.Context) (string, error) {
	out, err := i.Execute(ctx, "query-status", nil)
	if err != nil {
		return "", err
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return "", fmt.Errorf("qmp query-status: %w", err)
	}
	return st.Status, nil
}

// HMP runs a human monitor command. HMP reports failures as text that
// starts with "Error:"; that is returned as an error.
func (i *Instance) HMP(ctx context.Context, line string) (string, error) {
	out, err := i.Execute(ctx, "human-monitor-command", map[string]string{"command-line": line})
	if err != nil {
		return "", err
	}
	var s string
	if err := json.Unmarshal(out, &s); err != nil {
		return "", fmt.Errorf("hmp %s: %w", line, err)
	}
	s = strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
	if strings.HasPrefix(s, "Error:") || strings.Contains(s, "\nError:") {
		return s, fmt.Errorf("hmp %s: %s", line, s)
	}
	return s, nil
}

// SaveVM stores a snapshot of the whole machine (RAM, devices, disks)
// under name in the qcow2 overlay (and a qcow2 UEFI variable store). A
// later Start with Spec.LoadVM=name resumes it in seconds. Every writable
// drive must be qcow2: read-only drives (the seed) are skipped. The
// guest keeps running afterwards.
func (i *Instance) SaveVM(ctx context.Context, name string) error {
	if name == "" || strings.ContainsAny(name, " \t\"'\\") {
		return fmt.Errorf("savevm: invalid snapshot name %q", name)
	}
	if _, err := i.HMP(ctx, "savevm "+name); err != nil {
		return fmt.Errorf("savevm %s: %w", name, err)
	}
	return nil
}

// Kill ends QEMU with SIGKILL now and reaps it.
func (i *Instance) Kill() {
	if i.isReleased() {
		return
	}
	i.stopNow()
	<-i.exited
}

func (i *Instance) stopNow() {
	i.stopMu.Lock()
	i.requested = true
	i.how = "kill"
	i.stopMu.Unlock()
	i.proc.signal(syscall.SIGKILL)
}

// Shutdown stops QEMU and cleans up; it is safe to call more than once
// and after QEMU exited by itself. With grace > 0 the guest first gets an
// ACPI powerdown and up to grace to power off; then QEMU gets `quit`,
// then (after interval default/kill-grace) SIGKILL. QEMU is always
// reaped, and the transient files (QMP socket, pidfile) removed; a run
// dir Start created is removed entirely. Overlays belong to the caller.
// If ctx ends first, Shutdown skips straight to SIGKILL.
func (i *Instance) Shutdown(ctx context.Context, grace time.Duration) error {
	i.stopMu.Lock()
	if i.released {
		i.stopMu.Unlock()
		return nil // Detach let go of it
	}
	if i.stopCtx != nil {
		i.stopCtx()
	}
	first := !i.stopping
	i.stopping = true
	i.stopMu.Unlock()
	if !first {
		// Another Shutdown runs: wait for it.
		select {
		case <-i.exited:
		case <-ctx.Done():
			i.stopNow()
			<-i.exited
		}
		i.cleanup(true)
		return nil
	}
	setHow := func(h string) {
		i.stopMu.Lock()
		i.requested = true
		i.how = h
		i.stopMu.Unlock()
	}
	waitExit := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-i.exited:
			return true
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
	if !i.proc.exited() && grace > 0 && ctx.Err() == nil {
		setHow("powerdown")
		pctx, cancel := context.WithTimeout(ctx, min(grace, 5*time.Second))
		_, err := i.Execute(pctx, "system_powerdown", nil)
		cancel()
		if err == nil {
			waitExit(grace)
		}
	}
	killGrace := i.ivs.MustGet("default/kill-grace", "")
	if !i.proc.exited() && ctx.Err() == nil {
		setHow("quit")
		qctx, cancel := context.WithTimeout(ctx, killGrace)
		_, err := i.Execute(qctx, "quit", nil)
		cancel()
		if err != nil && !errors.Is(err, ErrExited) {
			i.log.Info("qmp quit failed", "err", err)
		}
		waitExit(killGrace)
	}
	if !i.proc.exited() {
		i.stopNow()
	}
	<-i.exited
	i.cleanup(true)
	return nil
}

// cleanup closes QMP and the events file and removes transient files;
// with removeOwned, also a run dir Start created.
func (i *Instance) cleanup(removeOwned bool) {
	i.stopMu.Lock()
	defer i.stopMu.Unlock()
	if !i.cleaned {
		i.cleaned = true
		i.closeMonitor()
		os.Remove(i.spec.QMPSocket)
		os.Remove(i.spec.PIDFile)
		if i.rd != nil {
			i.rd.setQEMU(0, nil)
		}
	}
	if removeOwned && i.ownRunDir {
		i.ownRunDir = false
		i.rd.Remove()
	}
}
