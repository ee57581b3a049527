package framework

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/cloudinit"
	gexec "github.com/guestcatalog/guestcatalog/framework/exec"
)

// EvaluateCheck judges one run of a declared check: runErr is how the
// command ended (an *exec.RunError for a non-zero exit, another error when
// it could not run at all), res what it printed. It returns nil when the
// exit code and both outputs are as declared, else an error that names the
// check and shows, for each expectation that failed, what was expected and
// what came back. It asserts nothing (the spec does).
func EvaluateCheck(c catalog.Check, res gexec.Result, runErr error) error {
	var re *gexec.RunError
	if runErr != nil && !errors.As(runErr, &re) {
		return fmt.Errorf("check %q: the command did not run: %w", c.Name, runErr)
	}
	if runErr != nil && res.ExitCode < 0 {
		return fmt.Errorf("check %q: the command did not run: %w", c.Name, runErr)
	}
	var problems []string
	if want := c.ExpectedExitCode(); res.ExitCode != want {
		problems = append(problems, fmt.Sprintf("exit code: expected %d, got %d", want, res.ExitCode))
	}
	for _, o := range []struct {
		name   string
		expect *catalog.Expect
		got    []byte
	}{{"stdout", c.Stdout, res.Stdout}, {"stderr", c.Stderr, res.Stderr}} {
		if err := o.expect.Match(string(o.got)); err != nil {
			problems = append(problems, fmt.Sprintf("%s: expected output that %s, got %s", o.name, o.expect, quoteOutput(o.got)))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	// One line first (the CLI shows it under the FAIL line), details after.
	msg := fmt.Sprintf("check %q failed: %s", c.Name, strings.Join(problems, "; "))
	// The other stream helps to tell why (a command's error message).
	if c.Stderr == nil && len(res.Stderr) > 0 {
		msg += "\n  stderr was: " + quoteOutput(res.Stderr)
	}
	return errors.New(msg)
}

// quoteOutput shows output in one line, quoted, its end if it is long.
func quoteOutput(b []byte) string {
	const limit = 2000
	s := string(b)
	if len(s) > limit {
		return fmt.Sprintf("…%q (last %d of %d bytes)", s[len(s)-limit:], limit, len(s))
	}
	return fmt.Sprintf("%q", s)
}

// RunCheck runs a declared check once in the guest, as the template's user
// or root, with the template's environment (GUESTCATALOG_USER, env,
// PARAM_<name>), and evaluates it (EvaluateCheck).
func (g *Guest) RunCheck(ctx context.Context, c catalog.Check) error {
	env, err := cloudinit.TemplateEnv(g.Template)
	if err != nil {
		return fmt.Errorf("check %q: %w", c.Name, err)
	}
	res, runErr := g.runner.Run(ctx, gexec.Cmd{Script: c.Run, Env: env, Sudo: c.As == catalog.CheckAsRoot})
	return EvaluateCheck(c, res, runErr)
}

// Bound is a check's or probe's `eventually:` (an interval name or a
// duration, both scaled) for the accelerator this guest runs on.
func (g *Guest) Bound(value string) (time.Duration, error) {
	return g.ivals.ResolveScaled(value, g.accel)
}

// CheckTimeout bounds the spec of one declared check while the tree is
// built: its eventually bound (for the run's accelerator policy) plus one
// probe interval, or one engine interval without a bound.
func (r *Run) CheckTimeout(c catalog.Check) (time.Duration, error) {
	if c.Eventually == "" {
		return r.Interval("engine"), nil
	}
	d, err := r.ivals.ResolveScaled(c.Eventually, r.policyAccel())
	if err != nil {
		return 0, fmt.Errorf("check %q: eventually: %w", c.Name, err)
	}
	return d + r.Interval("default/probe"), nil
}
