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
)

// ProbeError is a template probe that did not pass.
type ProbeError struct {
	Index       int
	Description string
	Hint        string
	Timeout     time.Duration
	ExitCode    int
	Output      string // the end of stdout and stderr
	Err         error
}

func (e *ProbeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: probe %d %q", ErrProbeFailed, e.Index+1, e.Description)
	switch {
	case errors.Is(e.Err, context.DeadlineExceeded) || errors.Is(e.Err, ErrPhaseTimeout):
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

// runProbe runs one probe with its timeout.
func runProbe(ctx context.Context, r exec.Runner, env map[string]string, i int, p catalog.Probe, timeout time.Duration) error {
	pctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("%w: probe after %s", ErrPhaseTimeout, timeout))
	defer cancel()
	res, err := r.Run(pctx, exec.Cmd{
		Script: probeRunner,
		Stdin:  strings.NewReader(p.Script),
		Env:    env,
	})
	if err == nil {
		return nil
	}
	out := exec.TailLines(append(append(res.Stdout, '\n'), res.Stderr...), 20)
	code := res.ExitCode
	if pctx.Err() != nil {
		err = context.Cause(pctx)
		code = -1
	}
	return &ProbeError{Index: i, Description: p.Description, Hint: strings.TrimSpace(p.Hint), Timeout: timeout, ExitCode: code, Output: out, Err: err}
}

// runProbes is the probes phase: every probe of ProbesFor(arch), in order,
// each with its own timeout (an interval name or a duration; default
// "probe"). The phase has no timeout of its own beyond the probes'.
func (m *Machine) runProbes(ctx context.Context, t *catalog.Template) error {
	probes := t.ProbesFor(m.cfg.Arch)
	env, err := cloudinit.TemplateEnv(t)
	if err != nil {
		return err
	}
	return m.eng.run(ctx, phase{name: PhaseProbes, hint: "a probe failed", run: func(ctx context.Context) (string, error) {
		for i, p := range probes {
			name := p.Timeout
			if name == "" {
				name = IntervalProbe
			}
			timeout, err := m.ivals.Resolve(name, m.accel.Used)
			if err != nil {
				return "", fmt.Errorf("probe %d %q: timeout: %w", i+1, p.Description, err)
			}
			start := time.Now()
			if err := runProbe(ctx, m.ssh, env, i, p, timeout); err != nil {
				return "", err
			}
			m.logger.Info("probe passed", "probe", p.Description, "duration", time.Since(start).Round(time.Millisecond))
		}
		return fmt.Sprintf("%d probes passed", len(probes)), nil
	}})
}
