package machine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Phase names, in order.
const (
	PhasePrepare   = "prepare"    // run dir, overlay, keys, seed
	PhaseLaunch    = "launch"     // QEMU started (and the accelerator chosen)
	PhaseKernel    = "kernel"     // the console shows the kernel started
	PhaseUserspace = "userspace"  // init (systemd) started
	PhaseSSH       = "ssh"        // sshd answered with the pinned host key
	PhaseCloudInit = "cloud-init" // cloud-init finished and provisioning succeeded
	PhaseProbes    = "probes"     // the template's probes passed
)

// Phase results.
const (
	ResultOK      = "ok"
	ResultFailed  = "failed"
	ResultTimeout = "timeout"
	ResultAborted = "aborted" // QEMU exited, a console failure, or ctx ended
)

// Sentinel errors (wrapped in a *PhaseError).
var (
	// ErrQEMUExited: QEMU exited while a phase waited.
	ErrQEMUExited = errors.New("qemu exited")
	// ErrConsoleFailure: the console showed a failure (panic, emergency mode, OOM).
	ErrConsoleFailure = errors.New("console shows a failure")
	// ErrPhaseTimeout: a phase did not finish within its interval.
	ErrPhaseTimeout = errors.New("phase timed out")
	// ErrProvisionFailed: cloud-init or the template's provisioning failed.
	ErrProvisionFailed = errors.New("provisioning failed")
	// ErrProbeFailed: a template probe did not pass.
	ErrProbeFailed = errors.New("probe failed")
)

// PhaseTiming is one phase of a machine's start, as written to phases.json.
type PhaseTiming struct {
	Name string
	// Start is the offset from Start's call.
	Start time.Duration
	// Duration the phase took (until success or failure).
	Duration time.Duration
	// Timeout the phase had (0: none).
	Timeout time.Duration
	// Result: ok, failed, timeout, aborted.
	Result string
	// Detail: what marked the phase done (the console line, the probe) or
	// why it failed.
	Detail string
}

type phaseTimingJSON struct {
	Name     string  `json:"name"`
	Start    float64 `json:"start_s"`
	Duration float64 `json:"duration_s"`
	Timeout  float64 `json:"timeout_s,omitempty"`
	Result   string  `json:"result"`
	Detail   string  `json:"detail,omitempty"`
}

// MarshalJSON writes durations as seconds (start_s, duration_s, timeout_s).
func (p PhaseTiming) MarshalJSON() ([]byte, error) {
	return json.Marshal(phaseTimingJSON{
		Name: p.Name, Start: secs(p.Start), Duration: secs(p.Duration),
		Timeout: secs(p.Timeout), Result: p.Result, Detail: p.Detail,
	})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (p *PhaseTiming) UnmarshalJSON(b []byte) error {
	var j phaseTimingJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*p = PhaseTiming{
		Name: j.Name, Start: fromSecs(j.Start), Duration: fromSecs(j.Duration),
		Timeout: fromSecs(j.Timeout), Result: j.Result, Detail: j.Detail,
	}
	return nil
}

func secs(d time.Duration) float64 { return float64(d.Milliseconds()) / 1000 }

func fromSecs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// PhaseError is a failed phase: which template, which phase, why, the last
// console lines, a hint and where the artifacts are.
type PhaseError struct {
	Phase       string
	Template    string
	Err         error
	ConsoleTail string
	// QEMULog is the end of QEMU's own output, when QEMU failed or exited.
	QEMULog      string
	Hint         string
	ArtifactsDir string
	// Elapsed is the time from Start's call to the failure.
	Elapsed time.Duration
	// Attempts are earlier attempts that failed before userspace and were
	// retried (Config.RetryInfra); this error is the last attempt's.
	Attempts []Attempt
}

func (e *PhaseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "template %s: phase %s failed", e.Template, e.Phase)
	if e.Elapsed > 0 {
		fmt.Fprintf(&b, " after %s", e.Elapsed.Round(100*time.Millisecond))
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	if e.Hint != "" {
		fmt.Fprintf(&b, "\nhint: %s", e.Hint)
	}
	if tail := strings.TrimRight(e.ConsoleTail, "\n"); tail != "" {
		fmt.Fprintf(&b, "\nconsole (last lines):\n    %s", strings.ReplaceAll(tail, "\n", "\n    "))
	}
	if q := strings.TrimRight(e.QEMULog, "\n"); q != "" {
		fmt.Fprintf(&b, "\nqemu.log (last lines):\n    %s", strings.ReplaceAll(q, "\n", "\n    "))
	}
	if e.ArtifactsDir != "" {
		fmt.Fprintf(&b, "\nartifacts: %s", e.ArtifactsDir)
	}
	for i, a := range e.Attempts {
		fmt.Fprintf(&b, "\nearlier attempt %d (retried: failed before userspace) in phase %s: %s", i+1, a.Phase, a.Error)
		if a.ArtifactsDir != "" {
			fmt.Fprintf(&b, " (artifacts: %s)", a.ArtifactsDir)
		}
	}
	return b.String()
}

func (e *PhaseError) Unwrap() error { return e.Err }

// ConsoleFailureError is a failure line seen on the console.
type ConsoleFailureError struct {
	Pattern string // pattern name: kernel-panic, oops, emergency-mode, ...
	Line    string
}

func (e *ConsoleFailureError) Error() string {
	return fmt.Sprintf("%v (%s): %s", ErrConsoleFailure, e.Pattern, e.Line)
}

func (e *ConsoleFailureError) Is(target error) bool { return target == ErrConsoleFailure }

// QEMUExitError is QEMU exiting before the machine was ready.
type QEMUExitError struct {
	Err    error  // the process's exit error (nil: exited 0)
	Stderr string // the end of QEMU's stderr
}

func (e *QEMUExitError) Error() string {
	msg := ErrQEMUExited.Error()
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += "\nqemu stderr:\n    " + strings.ReplaceAll(s, "\n", "\n    ")
	}
	return msg
}

func (e *QEMUExitError) Is(target error) bool { return target == ErrQEMUExited }

func (e *QEMUExitError) Unwrap() error { return e.Err }

// monitor gathers what the boot shows: console progress marks, the first
// console failure, and QEMU's exit. Phases wait on it; the engine aborts a
// phase as soon as a failure or the exit is known.
type monitor struct {
	mu       sync.Mutex
	reached  map[string]string // progress pattern name -> first line
	changed  chan struct{}     // closed and replaced on every change
	failure  *ConsoleFailureError
	failed   chan struct{}
	exitErr  *QEMUExitError
	exited   chan struct{}
	failOnce sync.Once
	exitOnce sync.Once
	onStep   func(Event) // provisioning steps seen on the console
}

func newMonitor() *monitor {
	return &monitor{
		reached: map[string]string{},
		changed: make(chan struct{}),
		failed:  make(chan struct{}),
		exited:  make(chan struct{}),
	}
}

// Progress records a progress mark (the first line for each name wins).
func (m *monitor) Progress(name, line string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.reached[name]; ok {
		return
	}
	m.reached[name] = line
	close(m.changed)
	m.changed = make(chan struct{})
}

// Failure records a console failure (the first one wins).
func (m *monitor) Failure(pattern, line string) {
	m.failOnce.Do(func() {
		m.mu.Lock()
		m.failure = &ConsoleFailureError{Pattern: pattern, Line: line}
		m.mu.Unlock()
		close(m.failed)
	})
}

// Exited records QEMU's exit.
func (m *monitor) Exited(err error, stderr string) {
	m.exitOnce.Do(func() {
		m.mu.Lock()
		m.exitErr = &QEMUExitError{Err: err, Stderr: stderr}
		m.mu.Unlock()
		close(m.exited)
	})
}

// abortCause is the reason phases cannot go on, or nil.
func (m *monitor) abortCause() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	// A console failure explains more than the exit it usually causes.
	if m.failure != nil {
		return m.failure
	}
	if m.exitErr != nil {
		return m.exitErr
	}
	return nil
}

// WaitProgress waits until the progress mark name is seen and returns its
// line. It returns early with ctx's cause (the engine cancels ctx on a
// failure or QEMU's exit).
func (m *monitor) WaitProgress(ctx context.Context, name string) (string, error) {
	for {
		m.mu.Lock()
		line, ok := m.reached[name]
		ch := m.changed
		m.mu.Unlock()
		if ok {
			return line, nil
		}
		select {
		case <-ctx.Done():
			return "", context.Cause(ctx)
		case <-ch:
		}
	}
}

// phase is one step of readiness.
type phase struct {
	name string
	// timeout from the phase's start (0: none) ...
	timeout time.Duration
	// ... or an absolute deadline (boot phases count from QEMU's start).
	deadline time.Time
	hint     string
	// run does the work; the string is the detail recorded on success.
	run func(ctx context.Context) (string, error)
}

// engine runs phases in order, records their timings and aborts the
// running phase when QEMU exits or the console shows a failure.
type engine struct {
	origin   time.Time
	mon      *monitor
	logger   *slog.Logger
	onUpdate func([]PhaseTiming) // called after each phase (phases.json)
	onEvent  func(Event)         // phase start and end (Config.OnEvent)
	now      func() time.Time
	// bootStart is QEMU's start: boot phase deadlines count from it.
	bootStart time.Time

	mu      sync.Mutex
	timings []PhaseTiming
}

func newEngine(origin time.Time, mon *monitor, logger *slog.Logger) *engine {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &engine{origin: origin, mon: mon, logger: logger, now: time.Now}
}

// Timings returns a copy of the recorded timings.
func (e *engine) Timings() []PhaseTiming {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]PhaseTiming(nil), e.timings...)
}

func (e *engine) record(t PhaseTiming) {
	e.mu.Lock()
	e.timings = append(e.timings, t)
	all := append([]PhaseTiming(nil), e.timings...)
	e.mu.Unlock()
	if e.onUpdate != nil {
		e.onUpdate(all)
	}
}

// phaseFailure is what run returns: the phase and its cause; Start turns it
// into a *PhaseError with the console tail and the artifacts path.
type phaseFailure struct {
	phase string
	hint  string
	err   error
}

func (f *phaseFailure) Error() string { return fmt.Sprintf("phase %s: %v", f.phase, f.err) }
func (f *phaseFailure) Unwrap() error { return f.err }

// run runs one phase. A failure is a *phaseFailure whose err wraps
// ErrPhaseTimeout, ErrQEMUExited, ErrConsoleFailure, ctx's error, or the
// phase's own error.
func (e *engine) run(ctx context.Context, p phase) error {
	start := e.now()
	t := PhaseTiming{Name: p.name, Start: start.Sub(e.origin)}
	if e.onEvent != nil {
		e.onEvent(Event{Kind: EventStart, Phase: p.name, Time: start})
		defer func() {
			e.onEvent(Event{Kind: EventEnd, Phase: p.name, Result: t.Result, Elapsed: t.Duration, Detail: t.Detail})
		}()
	}

	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	deadline := p.deadline
	if deadline.IsZero() && p.timeout > 0 {
		deadline = start.Add(p.timeout)
	}
	var timeoutErr error
	if !deadline.IsZero() {
		t.Timeout = deadline.Sub(start)
		if !p.deadline.IsZero() {
			timeoutErr = fmt.Errorf("%w: %s not reached within %s of QEMU's start", ErrPhaseTimeout, p.name, p.deadline.Sub(e.bootOrigin()).Round(time.Second))
		} else {
			timeoutErr = fmt.Errorf("%w: %s did not finish within %s", ErrPhaseTimeout, p.name, p.timeout)
		}
		var c2 context.CancelFunc
		pctx, c2 = context.WithDeadlineCause(pctx, deadline, timeoutErr)
		defer c2()
	}
	// Abort at once on QEMU's exit or a console failure.
	stop := make(chan struct{})
	defer close(stop)
	if e.mon != nil {
		if cause := e.mon.abortCause(); cause != nil {
			cancel(cause)
		}
		go func() {
			select {
			case <-e.mon.failed:
				cancel(e.mon.abortCause())
			case <-e.mon.exited:
				// Give the console a moment: a panic line usually
				// explains the exit, and is written just before it.
				select {
				case <-e.mon.failed:
				case <-time.After(300 * time.Millisecond):
				}
				cancel(e.mon.abortCause())
			case <-stop:
			}
		}()
	}

	detail, err := p.run(pctx)
	t.Duration = e.now().Sub(start)
	if err == nil {
		t.Result, t.Detail = ResultOK, detail
		e.record(t)
		e.logger.Info("phase done", "phase", p.name, "duration", t.Duration.Round(time.Millisecond), "at", (t.Start + t.Duration).Round(time.Millisecond))
		return nil
	}
	// Prefer the reason the phase context ended over the error it caused;
	// a console failure or QEMU's exit explains any phase error.
	if e.mon != nil {
		if cause := e.mon.abortCause(); cause != nil {
			if !errors.Is(err, cause) || err.Error() != cause.Error() {
				e.logger.Debug("phase aborted", "phase", p.name, "phase error", err)
			}
			err = cause
		}
	}
	if cause := context.Cause(pctx); cause != nil && pctx.Err() != nil && ctx.Err() == nil {
		if !errors.Is(err, cause) {
			err = cause
		}
	} else if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("%w (%v)", context.Cause(ctx), err)
	}
	switch {
	case errors.Is(err, ErrPhaseTimeout):
		t.Result = ResultTimeout
	case errors.Is(err, ErrQEMUExited), errors.Is(err, ErrConsoleFailure), ctx.Err() != nil:
		t.Result = ResultAborted
	default:
		t.Result = ResultFailed
	}
	t.Detail = firstLine(err.Error())
	e.record(t)
	e.logger.Warn("phase failed", "phase", p.name, "result", t.Result, "duration", t.Duration.Round(time.Millisecond), "err", t.Detail)
	return &phaseFailure{phase: p.name, hint: p.hint, err: err}
}

// bootOrigin is where a deadline is counted from, for messages.
func (e *engine) bootOrigin() time.Time {
	if e.bootStart.IsZero() {
		return e.origin
	}
	return e.bootStart
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
