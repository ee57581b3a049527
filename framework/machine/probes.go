package machine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/cloudinit"
	"github.com/guestcatalog/guestcatalog/framework/exec"
	"github.com/guestcatalog/guestcatalog/framework/intervals"
)

// IntervalRetry is the pause between two runs of a probe (or check) with
// `eventually:`, scaled by accelerator like every interval.
const IntervalRetry = "default/retry"

// ProbeError is a template probe that did not pass.
type ProbeError struct {
	Index       int
	Description string
	Hint        string
	// Timeout bounds one run; Eventually, when not zero, all the runs.
	Timeout    time.Duration
	Eventually time.Duration
	Attempts   int
	ExitCode   int    // of the last run; -1 when it timed out or did not run
	Output     string // the end of stdout and stderr of the last run
	Err        error
}

func (e *ProbeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: probe %d %q", ErrProbeFailed, e.Index+1, e.Description)
	timedOut := errors.Is(e.Err, context.DeadlineExceeded) || errors.Is(e.Err, ErrPhaseTimeout)
	switch {
	case e.Eventually > 0:
		fmt.Fprintf(&b, " did not pass within %s (%d runs; the last ", e.Eventually, e.Attempts)
		switch {
		case timedOut:
			b.WriteString("did not finish in time)")
		case e.ExitCode >= 0:
			fmt.Fprintf(&b, "exited %d)", e.ExitCode)
		default:
			fmt.Fprintf(&b, "failed: %v)", e.Err)
		}
	case timedOut:
		fmt.Fprintf(&b, " did not pass within %s", e.Timeout)
	case e.ExitCode >= 0:
		fmt.Fprintf(&b, " exited %d", e.ExitCode)
	case e.Err != nil:
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if out := strings.TrimSpace(e.Output); out != "" {
		fmt.Fprintf(&b, "\noutput (last lines):\n    %s", strings.ReplaceAll(out, "\n", "\n    "))
	}
	return b.String()
}

func (e *ProbeError) Unwrap() []error { return []error{ErrProbeFailed, e.Err} }

// probeRunner runs a probe script as the template user with the template
// environment (GUESTCATALOG_USER, env, PARAM_<name>), honouring its #!
// line: the script goes to a temporary file in the guest and is executed.
const probeRunner = `f=$(mktemp) || exit 125
trap 'rm -f "$f"' EXIT
cat > "$f" && chmod 0700 "$f" || exit 125
case "$(head -c 2 "$f")" in '#!') "$f" ;; *) sh "$f" ;; esac`

// probeBounds are the resolved waits of one probe: each run is bounded by
// timeout; with within > 0 the probe is run again, poll apart, until it
// passes or within has elapsed.
type probeBounds struct {
	timeout, within, poll time.Duration
}

// resolveProbe resolves a probe's timeout (an interval name or a duration;
// default "probe") and its eventually bound (scaled by the accelerator,
// durations included) for accel.
func resolveProbe(s *intervals.Set, p catalog.Probe, accel string) (probeBounds, error) {
	var b probeBounds
	name := p.Timeout
	if name == "" {
		name = IntervalProbe
	}
	var err error
	if b.timeout, err = s.Resolve(name, accel); err != nil {
		return b, fmt.Errorf("timeout: %w", err)
	}
	if p.Eventually == "" {
		return b, nil
	}
	if b.within, err = s.ResolveScaled(p.Eventually, accel); err != nil {
		return b, fmt.Errorf("eventually: %w", err)
	}
	if b.poll, err = s.Get(IntervalRetry, accel); err != nil {
		return b, fmt.Errorf("eventually: %w", err)
	}
	return b, nil
}

// checkProbeIntervals resolves every probe's timeout and eventually before
// the guest boots, so that a misspelt interval name ends the run in the
// prepare phase, not after minutes of boot and provisioning.
func checkProbeIntervals(s *intervals.Set, probes []catalog.Probe) error {
	var errs []error
	for i, p := range probes {
		if _, err := resolveProbe(s, p, ""); err != nil {
			errs = append(errs, fmt.Errorf("probe %d %q: %w", i+1, p.Description, err))
		}
	}
	return errors.Join(errs...)
}

// ProbeBudget is the longest a probe can take on accel: its eventually
// bound when it has one (no run outlasts it), else its timeout. A caller
// bounding the whole boot (a spec's timeout) adds these up.
func ProbeBudget(s *intervals.Set, p catalog.Probe, accel string) (time.Duration, error) {
	b, err := resolveProbe(s, p, accel)
	if err != nil {
		return 0, err
	}
	if b.within > 0 {
		return b.within, nil
	}
	return b.timeout, nil
}

// runProbe runs one probe: once within its timeout, or, with eventually,
// until it passes within that bound (each run still bounded by timeout,
// and cut short by the bound). It returns how many runs it took.
func runProbe(ctx context.Context, r exec.Runner, env map[string]string, i int, p catalog.Probe, b probeBounds) (runs int, err error) {
	if b.within <= 0 {
		res, err := runProbeOnce(ctx, r, env, p.Script, time.Now().Add(b.timeout), b.timeout)
		if err == nil {
			return 1, nil
		}
		return 1, probeError(i, p, b, 1, res, err)
	}
	deadline := time.Now().Add(b.within)
	var last *ProbeError // the last run that ended on its own
	for attempt := 1; ; attempt++ {
		until, cut := time.Now().Add(b.timeout), false
		if deadline.Before(until) {
			until, cut = deadline, true
		}
		res, err := runProbeOnce(ctx, r, env, p.Script, until, b.timeout)
		if err == nil {
			return attempt, nil
		}
		switch {
		case ctx.Err() != nil:
			return attempt, probeError(i, p, b, attempt, res, context.Cause(ctx))
		case cut && time.Now().After(until) && last != nil:
			// stopped by the bound in the middle of a run: the run
			// before says more about why the probe does not pass
			return last.Attempts, last
		}
		last = probeError(i, p, b, attempt, res, err)
		// Another run only when the bound leaves more than a pause.
		if time.Until(deadline) <= b.poll {
			return last.Attempts, last
		}
		t := time.NewTimer(b.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return attempt, probeError(i, p, b, attempt, res, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// runProbeOnce runs the script once, until deadline. A run cut by the
// deadline returns the phase-timeout cause, with exit code -1.
func runProbeOnce(ctx context.Context, r exec.Runner, env map[string]string, script string, deadline time.Time, timeout time.Duration) (exec.Result, error) {
	pctx, cancel := context.WithDeadlineCause(ctx, deadline, fmt.Errorf("%w: probe after %s", ErrPhaseTimeout, timeout))
	defer cancel()
	res, err := r.Run(pctx, exec.Cmd{
		Script: probeRunner,
		Stdin:  strings.NewReader(script),
		Env:    env,
	})
	if err != nil && pctx.Err() != nil {
		res.ExitCode = -1
		err = context.Cause(pctx)
	}
	return res, err
}

func probeError(i int, p catalog.Probe, b probeBounds, attempts int, res exec.Result, err error) *ProbeError {
	out := exec.TailLines(append(append(res.Stdout, '\n'), res.Stderr...), 20)
	return &ProbeError{Index: i, Description: p.Description, Hint: strings.TrimSpace(p.Hint),
		Timeout: b.timeout, Eventually: b.within, Attempts: attempts, ExitCode: res.ExitCode, Output: out, Err: err}
}

// runProbes is the probes phase: every probe of ProbesFor(arch), in order,
// each with its own timeout (an interval name or a duration; default
// "probe") and, with eventually, retried within that bound. The phase has
// no timeout of its own beyond the probes'.
func (m *Machine) runProbes(ctx context.Context, t *catalog.Template) error {
	probes := t.ProbesFor(m.cfg.Arch)
	env, err := cloudinit.TemplateEnv(t)
	if err != nil {
		return err
	}
	return m.eng.run(ctx, phase{name: PhaseProbes, hint: "a probe failed", run: func(ctx context.Context) (string, error) {
		for i, p := range probes {
			b, err := resolveProbe(m.ivals, p, m.accel.Used)
			if err != nil {
				return "", fmt.Errorf("probe %d %q: %w", i+1, p.Description, err)
			}
			start := time.Now()
			runs, err := runProbe(ctx, m.ssh, env, i, p, b)
			if err != nil {
				return "", err
			}
			m.logger.Info("probe passed", "probe", p.Description, "runs", runs, "duration", time.Since(start).Round(time.Millisecond))
		}
		return fmt.Sprintf("%d probes passed", len(probes)), nil
	}})
}
