package framework

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // the assertion layer

	"github.com/guestcatalog/guestcatalog/catalog"
	gexec "github.com/guestcatalog/guestcatalog/framework/exec"
	"github.com/guestcatalog/guestcatalog/framework/intervals"
	"github.com/guestcatalog/guestcatalog/framework/machine"
	"github.com/guestcatalog/guestcatalog/framework/report"
)

// Machine is the guest's machine (QEMU, mounts, proxy): the isolation
// suite reads what the host exported and published.
func (g *Guest) Machine() *machine.Machine { return g.machine }

// Guest is a booted, provisioned template that specs talk to.
type Guest struct {
	// Template is the resolved template.
	Template *catalog.Template
	Arch     string
	// Hostname is the hostname cloud-init was asked to set.
	Hostname string
	// EngineVersion is what the engine's versionCommand printed after boot.
	EngineVersion string
	// Report collects the template's verdict (phases, provenance, checks).
	Report *report.Template

	run       *Run
	accel     string         // the accelerator this guest runs on
	ivals     *intervals.Set // the run's intervals, scaled for accel
	runner    gexec.Runner
	machine   *machine.Machine
	uploaded  bool
	artifacts string
	close     func(ctx context.Context) error
}

// Interval is a named interval (or a duration) scaled for the accelerator
// this guest runs on; an unknown name panics (names in specs are
// constants; templates' values are validated before the run).
func (g *Guest) Interval(name string) time.Duration {
	d, err := g.ivals.Resolve(name, g.accel)
	if err != nil {
		panic(err)
	}
	return d
}

// Name is the template's name.
func (g *Guest) Name() string { return g.Template.Name }

// User is the template's login user.
func (g *Guest) User() string { return g.Template.User.Name }

// Artifacts is the directory with the guest's console log, phase timings
// and collected logs.
func (g *Guest) Artifacts() string { return g.artifacts }

// Exec runs a shell script in the guest as the template's user and returns
// what happened; it does not assert.
func (g *Guest) Exec(ctx context.Context, script string) (gexec.Result, error) {
	return g.runner.Run(ctx, gexec.Script(script))
}

// ExecRoot runs a shell script as root (sudo -n) without asserting.
func (g *Guest) ExecRoot(ctx context.Context, script string) (gexec.Result, error) {
	return g.runner.Run(ctx, gexec.Cmd{Script: script, Sudo: true})
}

// Run runs a script as the template's user, asserts that it exits 0 and
// returns its stdout with surrounding space trimmed.
func (g *Guest) Run(ctx context.Context, script string) string {
	GinkgoHelper()
	res, err := g.Exec(ctx, script)
	g.check(err, res, g.User(), script)
	return strings.TrimSpace(string(res.Stdout))
}

// RunRoot is Run as root.
func (g *Guest) RunRoot(ctx context.Context, script string) string {
	GinkgoHelper()
	res, err := g.ExecRoot(ctx, script)
	g.check(err, res, "root", script)
	return strings.TrimSpace(string(res.Stdout))
}

// RunCmd runs cmd, asserts success and returns the full result.
func (g *Guest) RunCmd(ctx context.Context, cmd gexec.Cmd) gexec.Result {
	GinkgoHelper()
	res, err := g.runner.Run(ctx, cmd)
	who := g.User()
	if cmd.Sudo {
		who = "root"
	}
	g.check(err, res, who, cmd.String())
	return res
}

// RunExit runs a script (as root when root is set), asserts that it exits
// with code and returns its stdout untrimmed.
func (g *Guest) RunExit(ctx context.Context, root bool, script string, code int) string {
	GinkgoHelper()
	var res gexec.Result
	var err error
	who := g.User()
	if root {
		res, err = g.ExecRoot(ctx, script)
		who = "root"
	} else {
		res, err = g.Exec(ctx, script)
	}
	if res.ExitCode != code {
		Fail(fmt.Sprintf("%s: exit code %d, want %d%s\n%s", firstLine(script), res.ExitCode, code, lastLine(res.Stderr, err), g.where(who, script, res)))
	}
	return string(res.Stdout)
}

// check fails the spec with the command, its exit code and stderr first
// (the line a verdict shows), then where to look.
func (g *Guest) check(err error, res gexec.Result, who, script string) {
	GinkgoHelper()
	if err == nil {
		return
	}
	Fail(fmt.Sprintf("%s: exit code %d%s\n%s", firstLine(script), res.ExitCode, lastLine(res.Stderr, err), g.where(who, script, res)))
}

func (g *Guest) where(who, script string, res gexec.Result) string {
	return fmt.Sprintf("template %s, as %s, artifacts %s\ncommand:\n%s\nstdout:\n%s\nstderr:\n%s",
		g.Name(), who, g.artifacts, indent(script), indent(gexec.TailLines(res.Stdout, 20)), indent(gexec.TailLines(res.Stderr, 20)))
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " ..."
	}
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}

// lastLine is ": <the last stderr line>", or the error when stderr is empty.
func lastLine(stderr []byte, err error) string {
	if l := gexec.TailLines(stderr, 1); l != "" {
		return ": " + l
	}
	if err != nil {
		return ": " + err.Error()
	}
	return ""
}

// Upload writes data to path in the guest with mode, as root.
func (g *Guest) Upload(ctx context.Context, data []byte, path string, mode uint32) {
	GinkgoHelper()
	script := fmt.Sprintf("mkdir -p \"$(dirname %[1]s)\" && cat > %[1]s && chmod %[2]o %[1]s", gexec.Quote(path), mode)
	res, err := g.runner.Run(ctx, gexec.Cmd{Script: script, Stdin: strings.NewReader(string(data)), Sudo: true})
	g.check(err, res, "root", "upload "+path)
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}
