package machine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/guestcatalog/guestcatalog/framework/console"
	"github.com/guestcatalog/guestcatalog/framework/report"
)

// Attempt is a start attempt that failed before the guest's userspace ran
// (a kernel panic, a firmware stall, QEMU crashing) and was retried with a
// fresh overlay (Config.RetryInfra).
type Attempt struct {
	Phase string `json:"phase"`
	Error string `json:"error"`
	// ConsoleTail is the end of that attempt's serial console.
	ConsoleTail string `json:"consoleTail,omitempty"`
	// ArtifactsDir keeps that attempt's artifacts (<artifacts>/attempt-N).
	ArtifactsDir string        `json:"artifacts,omitempty"`
	Elapsed      time.Duration `json:"elapsed"`
}

// attemptsDirPrefix names the subdirectories of the artifacts dir that
// keep the artifacts of failed attempts.
const attemptsDirPrefix = "attempt-"

// InfraFailure reports whether a start failure happened before the guest's
// userspace started, for a reason that is not the template's: QEMU failed
// to start or exited, the console showed a kernel panic, or the firmware or
// kernel stalled (a phase timeout). Such a failure is worth one retry; a
// failure from userspace on (ssh, cloud-init, probes) never is, nor one
// of the host side (prepare: a refused image, no disk space).
func InfraFailure(err error) bool {
	var pe *PhaseError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Phase {
	case PhaseLaunch:
		return !errors.Is(pe.Err, context.Canceled) && !errors.Is(pe.Err, context.DeadlineExceeded)
	case PhaseKernel, PhaseUserspace:
		return errors.Is(pe.Err, ErrConsoleFailure) || errors.Is(pe.Err, ErrQEMUExited) || errors.Is(pe.Err, ErrPhaseTimeout)
	}
	return false
}

// startWithRetry runs the first attempt and, when it failed before
// userspace and cfg.RetryInfra is set, one more (cfg.infraRetries more in
// tests) with a fresh run dir and overlay. The artifacts of failed attempt
// N move to <artifacts>/attempt-N.
func startWithRetry(ctx context.Context, cfg Config) (*Machine, error) {
	retries := 0
	if cfg.RetryInfra && cfg.Resume == nil {
		retries = max(cfg.infraRetries, 1)
	}
	var failed []Attempt
	for n := 1; ; n++ {
		attemptCfg := cfg
		if cfg.attemptHook != nil {
			cfg.attemptHook(n, &attemptCfg)
		}
		m, err := startOnce(ctx, attemptCfg)
		var pe *PhaseError
		errors.As(err, &pe)
		if err == nil || n > retries || ctx.Err() != nil || !InfraFailure(err) {
			// The last attempt: it carries the failed ones before it.
			if m != nil {
				m.attempts = failed
			}
			if pe != nil {
				pe.Attempts = failed
			}
			return m, err
		}
		a := Attempt{Phase: pe.Phase, Error: firstLine(pe.Err.Error()), ConsoleTail: pe.ConsoleTail, Elapsed: pe.Elapsed}
		if m != nil {
			// Kept running for KeepOnFailure: this attempt is over anyway.
			_ = m.Close(context.WithoutCancel(ctx))
			a.ArtifactsDir = keepAttemptArtifacts(m.artifacts, n)
			// The next attempt writes into the same directory.
			cfg.ArtifactsDir = m.artifacts
			if m.logger != nil {
				m.logger.Warn("start failed before userspace; retrying with a fresh overlay",
					"attempt", n, "phase", a.Phase, "err", a.Error, "artifacts", a.ArtifactsDir)
			}
		}
		failed = append(failed, a)
	}
}

// keepAttemptArtifacts moves the artifacts of a failed attempt into
// <dir>/attempt-N and returns that directory ("" when nothing moved).
func keepAttemptArtifacts(dir string, n int) string {
	des, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	dst := filepath.Join(dir, fmt.Sprintf("%s%d", attemptsDirPrefix, n))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return ""
	}
	for _, de := range des {
		// The machine's own artifacts are files; directories are not its.
		if !de.Type().IsRegular() || strings.HasPrefix(de.Name(), attemptsDirPrefix) {
			continue
		}
		_ = os.Rename(filepath.Join(dir, de.Name()), filepath.Join(dst, de.Name()))
	}
	return dst
}

// Attempts are the failed start attempts before the one that gave this
// machine (empty unless a failure before userspace was retried).
func (m *Machine) Attempts() []Attempt { return append([]Attempt(nil), m.attempts...) }

// Flaky says whether the machine started only on a retry: its first
// attempt failed before userspace.
func (m *Machine) Flaky() bool { return len(m.attempts) > 0 }

// ReportAttempts gives what report.json says of a start that was retried
// (Config.RetryInfra): flaky, and every attempt with its console tail, the
// last one included. m and err are what Start returned; flaky is false and
// attempts nil when the first attempt was the only one.
func ReportAttempts(m *Machine, err error) (flaky bool, attempts []report.Attempt) {
	var earlier []Attempt
	var pe *PhaseError
	if errors.As(err, &pe) {
		earlier = pe.Attempts
	} else if m != nil && m.Flaky() {
		earlier = m.Attempts()
	}
	if len(earlier) == 0 {
		return false, nil
	}
	for _, a := range earlier {
		attempts = append(attempts, report.Attempt{Result: report.Fail, Phase: a.Phase, Error: a.Error,
			ConsoleTail: a.ConsoleTail, Artifacts: a.ArtifactsDir, Seconds: a.Elapsed.Seconds()})
	}
	last := report.Attempt{Result: report.Pass}
	if pe != nil {
		last = report.Attempt{Result: report.Fail, Phase: pe.Phase, Error: firstLine(pe.Err.Error()),
			ConsoleTail: pe.ConsoleTail, Artifacts: pe.ArtifactsDir, Seconds: pe.Elapsed.Seconds()}
	} else if m != nil {
		last.Artifacts = m.artifacts
		last.Seconds = time.Since(m.origin).Seconds()
		if lines, terr := console.Tail(filepath.Join(m.artifacts, ArtifactSerial), 30); terr == nil {
			last.ConsoleTail = strings.Join(lines, "\n")
		}
	}
	return true, append(attempts, last)
}
