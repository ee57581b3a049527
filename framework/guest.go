package framework

import (
	"context"
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // the assertion layer
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/guestcatalog/guestcatalog/catalog"
	gexec "github.com/guestcatalog/guestcatalog/framework/exec"
	"github.com/guestcatalog/guestcatalog/framework/report"
)

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

	runner    gexec.Runner
	uploaded  bool
	artifacts string
	close     func(ctx context.Context) error
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
	Expect(err).NotTo(HaveOccurred(), g.describe("as "+g.User(), script))
	return strings.TrimSpace(string(res.Stdout))
}

// RunRoot is Run as root.
func (g *Guest) RunRoot(ctx context.Context, script string) string {
	GinkgoHelper()
	res, err := g.ExecRoot(ctx, script)
	Expect(err).NotTo(HaveOccurred(), g.describe("as root", script))
	return strings.TrimSpace(string(res.Stdout))
}

// RunCmd runs cmd, asserts success and returns the full result.
func (g *Guest) RunCmd(ctx context.Context, cmd gexec.Cmd) gexec.Result {
	GinkgoHelper()
	res, err := g.runner.Run(ctx, cmd)
	what := cmd.Script
	if what == "" {
		what = gexec.Join(cmd.Args)
	}
	Expect(err).NotTo(HaveOccurred(), g.describe(fmt.Sprintf("(sudo=%v)", cmd.Sudo), what))
	return res
}

// Upload writes data to path in the guest with mode, as root.
func (g *Guest) Upload(ctx context.Context, data []byte, path string, mode uint32) {
	GinkgoHelper()
	script := fmt.Sprintf("mkdir -p \"$(dirname %[1]s)\" && cat > %[1]s && chmod %[2]o %[1]s", gexec.Quote(path), mode)
	_, err := g.runner.Run(ctx, gexec.Cmd{Script: script, Stdin: strings.NewReader(string(data)), Sudo: true})
	Expect(err).NotTo(HaveOccurred(), g.describe("upload", path))
}

func (g *Guest) describe(who, what string) string {
	return fmt.Sprintf("template %s, phase assert: running %s:\n%s\nartifacts: %s", g.Name(), who, indent(what), g.artifacts)
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// Runner is the guest's command runner (SSH), for helpers outside Gomega.
func (g *Guest) Runner() gexec.Runner { return g.runner }
