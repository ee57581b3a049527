package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/formatter"
	"github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega"
	"github.com/spf13/cobra"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework"
	"github.com/guestcatalog/guestcatalog/framework/config"
	"github.com/guestcatalog/guestcatalog/framework/report"
	"github.com/guestcatalog/guestcatalog/framework/version"
	"github.com/guestcatalog/guestcatalog/suites/specs"
)

type verifyOptions struct {
	accel         string
	arch          string
	tier          string
	all           bool
	sets          []string
	reportDir     string
	artifacts     string
	keepOnFailure bool
	parallel      int
	labelFilter   string
	suite         string
	noReuse       bool
	timeout       time.Duration
	intervals     string
	failOnSkip    bool
	allowUnpinned bool
	quiet         bool
	output        outputOptions
}

func newVerifyCmd(a *app) *cobra.Command {
	var o verifyOptions
	env := a.envCfg
	cmd := &cobra.Command{
		Use:   "verify NAME|FILE|DIR... | --all",
		Short: "Boot templates under QEMU and check that their engine works",
		Long: `verify proves templates end to end. For each NAME (a template or an alias; a
template file or directory stands for the templates in it) it gets the image
(download with digest check, or a local build from Debian's archive), boots it
under QEMU, provisions it through cloud-init exactly as a user gets it, waits
for readiness in named phases (kernel, userspace, ssh, cloud-init, probes) and
runs the template's specs: the base checks (SSH as the template's user,
cloud-init without errors, hostname, sudo, disk grown, no failed units, clock),
the engine's (run a container, build an image, publish a port, schedule a pod,
...) and the checks the template declares (checks:). These are the same
Ginkgo specs that 'go test ./suites/...' runs.

Every flag, environment value and template is checked before anything is
downloaded, built or booted: a mistake ends verify at once with exit 2.

It shows each phase as it starts and ends (image, launch, kernel, userspace,
ssh, cloud-init with each provisioning step as the guest finishes it, probes,
each check) with its elapsed time: on a terminal a live status line per
running template below the finished lines; piped (CI), one plain line per
event, "HH:MM:SS [template] phase kernel done 4.1s". An image build's output
is summarised (its full log is <artifacts>/<template>/image-build.log). -q
prints the verdicts only; -v adds detail (Ginkgo's reporter, logs). Then one
line per check and a verdict per template: PASS, FAIL (with the reason and the
artifact path) or SKIPPED (with the reason, e.g. the engine's installer cannot
be reached), and a summary table (template, arch, accelerator, result, time,
flaky). With several templates every line carries its [template].

A template whose guest downloads what the catalog does not pin (engine.unpinned:
an installer script, a git clone, images pulled by tag) is SKIPPED, before
anything is downloaded or booted, with a reason naming each download;
--allow-unpinned runs it, and report.json lists those downloads.

--output json prints the events as JSON lines on stdout (keys time,
template, kind, phase, step, result, seconds, detail) and the human lines on
stderr.

After a template's first successful provisioning its disk is kept in the cache
(keyed by image digest, resolved template and rendered user-data), so the next
verify of the same template starts from it and skips provisioning.

` + exitCodesHelp,
		Example: `  catalog verify --offline debian-containerd
  catalog verify --offline ./my-template.yaml
  catalog verify --offline --report-dir out/reports debian-docker debian-podman
  catalog verify --all --tier nightly --fail-on-skip
  catalog verify ubuntu-k3s --artifacts out/artifacts --keep-on-failure
  catalog verify --allow-unpinned ubuntu-k8s`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && !o.all {
				return usagef("name at least one template (or a template file), or use --all")
			}
			if len(args) > 0 && o.all {
				return usagef("--all verifies every template: name none")
			}
			return a.runVerify(cmd.Context(), cmd.OutOrStdout(), o, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.accel, "accel", env.Accel,
		"accelerator: auto (KVM where it works, else TCG, decided by watching the guest), kvm or tcg (env GUESTCATALOG_ACCEL)")
	f.StringVar(&o.arch, "arch", env.Arch, "guest architecture: x86_64 or aarch64 (env GUESTCATALOG_ARCH)")
	f.StringVar(&o.tier, "tier", env.Tier, "with --all: only templates of this tier, nightly or experimental (env GUESTCATALOG_TIER)")
	f.BoolVar(&o.all, "all", false, "verify every template of the catalog (of --tier, with an image for --arch)")
	f.StringArrayVar(&o.sets, "set", nil,
		"override a param the templates declare, NAME=VALUE (repeatable); scripts read it as $PARAM_NAME")
	f.StringVar(&o.reportDir, "report-dir", env.ReportDir,
		"write <dir>/<template>/report.json and <dir>/junit.xml (env GUESTCATALOG_REPORT_DIR)")
	f.StringVar(&o.artifacts, "artifacts", env.ArtifactsDir,
		"per-template artifacts: serial console, QEMU argv, QMP events, cloud-init logs, journal, phase timings (env ARTIFACTS; default <cache-dir>/artifacts)")
	f.BoolVar(&o.keepOnFailure, "keep-on-failure", env.KeepOnFailure,
		"leave a failed guest running and print the SSH command to get in (stop it with Ctrl-C; env GUESTCATALOG_KEEP_ON_FAILURE)")
	f.IntVar(&o.parallel, "parallel", 1,
		"verify up to N templates at once, each in its own process (limited by free memory)")
	f.StringVar(&o.labelFilter, "label-filter", "",
		"run only specs matching this Ginkgo label expression (labels: template:, engine:, distro:, arch:, tier:)")
	f.StringVar(&o.suite, "suite", "",
		"run only this suite's specs: isolation (the isolation profile; same as --label-filter suite:isolation)")
	f.BoolVar(&o.noReuse, "no-reuse", !env.Reuse,
		"always provision from scratch; do not use or keep provisioned disks (env GUESTCATALOG_REUSE=0)")
	f.DurationVar(&o.timeout, "timeout", 2*time.Hour, "give up on the whole run after this long")
	f.StringVar(&o.intervals, "intervals", env.IntervalsFile,
		"YAML file overriding named intervals (timeouts), e.g. default/wait-ssh: 5m (env GUESTCATALOG_INTERVALS)")
	f.BoolVar(&o.failOnSkip, "fail-on-skip", env.FailOnSkip,
		"exit 1 when every template was SKIPPED (env GUESTCATALOG_FAIL_ON_SKIP)")
	f.BoolVar(&o.allowUnpinned, "allow-unpinned", env.AllowUnpinned, allowUnpinnedUsage)
	f.BoolVarP(&o.quiet, "quiet", "q", false, "print the verdicts only")
	addOutputFlag(cmd, &o.output, false, outputTable, outputJSON)
	return cmd
}

// verifyConfig is the run configuration: environment, shared flags, then
// verify's own flags.
func (a *app) verifyConfig(o verifyOptions) config.Config {
	c := a.config()
	c.Accel, c.Arch, c.Tier = o.accel, o.arch, o.tier
	c.ReportDir = o.reportDir
	if o.artifacts != a.envCfg.ArtifactsDir {
		c.ArtifactsDir = o.artifacts // else a.config's, under --cache-dir
	}
	c.KeepOnFailure, c.Reuse = o.keepOnFailure, !o.noReuse
	c.IntervalsFile, c.FailOnSkip = o.intervals, o.failOnSkip
	c.AllowUnpinned = o.allowUnpinned
	return c
}

// verifyPlan is what runVerify checked before anything runs.
type verifyPlan struct {
	cfg    config.Config
	cat    *catalog.Catalog
	names  []string
	params map[string]string
	paths  []string // template files and directories among the arguments
}

// planVerify checks every flag, environment value and template and picks
// the templates: everything that can be wrong with the command line is
// found here, before a download, build or boot (exit 2).
func (a *app) planVerify(ctx context.Context, o verifyOptions, args []string) (*verifyPlan, error) {
	p := &verifyPlan{cfg: a.verifyConfig(o)}
	if err := a.checkConfig(p.cfg); err != nil {
		return nil, err
	}
	if o.parallel < 1 {
		return nil, usagef("--parallel %d: want 1 or more", o.parallel)
	}
	if o.timeout <= 0 {
		return nil, usagef("--timeout %s: want a positive duration", o.timeout)
	}
	if _, err := o.output.get(); err != nil {
		return nil, err
	}
	if o.quiet && a.verbose {
		return nil, usagef("-q and -v: choose one")
	}
	if o.labelFilter != "" {
		if _, err := types.ParseLabelFilter(o.labelFilter); err != nil {
			return nil, usagef("--label-filter: %v", err)
		}
	}
	var err error
	if p.params, err = parseSets(o.sets); err != nil {
		return nil, err
	}
	var opts []catalog.ResolveOption
	if p.params != nil {
		opts = append(opts, catalog.WithParams(p.params))
	}
	if o.all {
		if p.cat, err = a.loadCatalog(ctx); err != nil {
			return nil, err
		}
		for _, t := range p.cat.Templates() {
			if (p.cfg.Tier == "" || t.Tier == p.cfg.Tier) && slices.Contains(t.Arches(), p.cfg.Arch) {
				if _, err := p.cat.Resolve(t.Name, opts...); err != nil {
					return nil, usageError{resolveError(t.Name, err)}
				}
				p.names = append(p.names, t.Name)
			}
		}
		if len(p.names) == 0 {
			return nil, usagef("--all: no template of tier %q has an image for %s", p.cfg.Tier, p.cfg.Arch)
		}
	} else {
		for _, arg := range args {
			if isPath(arg) {
				p.paths = append(p.paths, arg)
			}
		}
		if p.cat, p.names, err = a.templateArgs(ctx, args, opts...); err != nil {
			return nil, err
		}
	}
	slices.Sort(p.names)
	p.names = slices.Compact(p.names)
	p.cfg.Templates = p.names
	p.cfg.Catalogs = append(append([]string(nil), p.cfg.Catalogs...), p.paths...)
	return p, nil
}

func (a *app) runVerify(ctx context.Context, out io.Writer, o verifyOptions, args []string) error {
	if err := applySuite(&o); err != nil {
		return usagef("%v", err)
	}
	p, err := a.planVerify(ctx, o, args)
	if err != nil {
		return err
	}
	if o.parallel > 1 && len(p.names) > 1 {
		return a.verifyParallel(ctx, out, o, p)
	}
	return a.verifyInProcess(ctx, out, o, p)
}

// verifyInProcess runs the spec tree of the named templates in this process.
func (a *app) verifyInProcess(ctx context.Context, out io.Writer, o verifyOptions, p *verifyPlan) error {
	if p.cfg.ArtifactsDir != "" {
		if err := os.MkdirAll(p.cfg.ArtifactsDir, 0o755); err != nil {
			return err
		}
	}
	format, _ := o.output.get() // checked by planVerify
	var jsonW io.Writer
	if format == outputJSON {
		// Events on stdout, the human lines on stderr.
		jsonW, out = out, a.streams.ErrOut
	}
	rend := newRenderer(out, jsonW, isTerminal(out), o.quiet, a.verbose)
	rctx, stopRender := context.WithCancel(ctx)
	rendered := make(chan struct{})
	go func() { defer close(rendered); rend.Run(rctx) }()
	defer func() { stopRender(); <-rendered }()
	lines := rend.Writer()
	out = lines
	var checkLines io.Writer = lines
	if o.quiet {
		checkLines = nil
	}
	run, err := framework.NewRun(ctx, p.cfg, framework.WithCatalog(p.cat), framework.WithParams(p.params),
		framework.WithProgress(a.streams.ErrOut), framework.WithCheckLines(checkLines), framework.WithVerbose(a.verbose),
		framework.WithEvents(rend.Event), framework.WithLinePrefix(len(p.names) > 1))
	if err != nil {
		return usageError{err}
	}
	specs.Templates(run, p.names)

	// Ginkgo's own reporter goes to a log file (or stderr with -v); the
	// user sees our lines: one per check, one verdict per template.
	ginkgoLog := io.Discard
	if a.verbose {
		ginkgoLog = a.streams.ErrOut
	} else if p.cfg.ArtifactsDir != "" {
		f, err := os.Create(filepath.Join(p.cfg.ArtifactsDir, "ginkgo.log"))
		if err == nil {
			defer f.Close()
			ginkgoLog = f
		}
	}
	formatter.ColorableStdOut = ginkgoLog
	suiteConfig, reporterConfig := ginkgo.GinkgoConfiguration()
	suiteConfig.LabelFilter = o.labelFilter
	suiteConfig.Timeout = o.timeout
	suiteConfig.RandomizeAllSpecs = false
	reporterConfig.NoColor = true
	reporterConfig.Verbose = a.verbose
	reporterConfig.FullTrace = a.verbose
	if p.cfg.ReportDir != "" {
		if err := os.MkdirAll(p.cfg.ReportDir, 0o755); err != nil {
			return err
		}
		reporterConfig.JUnitReport = filepath.Join(p.cfg.ReportDir, "junit.xml")
	}
	if !o.quiet {
		for _, n := range p.names {
			fmt.Fprintf(out, "%s\n", n)
		}
	}
	gomega.RegisterFailHandler(ginkgo.Fail)
	t := &failT{}
	// RunSpecs handles SIGINT/SIGTERM itself: it interrupts the running
	// node, runs cleanups (guests are shut down) and reports.
	ginkgo.RunSpecs(t, "guestcatalog verify", suiteConfig, reporterConfig)
	if reporterConfig.JUnitReport != "" {
		if err := addJUnitProperties(reporterConfig.JUnitReport, junitProperties(version.Get())); err != nil {
			fmt.Fprintln(a.streams.ErrOut, "verify: JUnit properties:", err)
		}
	}

	fmt.Fprintln(out)
	reps := run.Reports()
	seen := map[string]bool{}
	for _, r := range reps {
		seen[r.Template] = true
	}
	for _, n := range p.names {
		if !seen[n] {
			// Filtered out by --label-filter, or the run was interrupted first.
			reps = append(reps, &report.Template{Template: n, Result: report.Skip, Reason: "no spec ran (label filter or interrupted run)"})
		}
	}
	stopRender()
	<-rendered
	out = lines
	ok := report.Summary(out, reps) && !t.failed
	printSummaryTable(out, reps)
	if kept := run.Kept(); len(kept) > 0 {
		// QEMU dies with this process: stay until the user is done.
		fmt.Fprintf(out, "\n%d failed guest(s) kept running (--keep-on-failure):\n", len(kept))
		for _, m := range kept {
			fmt.Fprintf(out, "  %s: %s\n", m.Template().Name, m.SSHCommand())
		}
		fmt.Fprintln(out, "Press Ctrl-C to stop them.")
		<-ctx.Done()
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		for _, m := range kept {
			_ = m.Close(cctx)
		}
		cancel()
	}
	return verdict(ok, reps, p.cfg.FailOnSkip)
}

// verdict is verify's exit: 1 when a template failed, or when every one
// was skipped and --fail-on-skip asks for it.
func verdict(ok bool, reps []*report.Template, failOnSkip bool) error {
	if !ok {
		return exitError{ExitFailed}
	}
	if failOnSkip && len(reps) > 0 && !slices.ContainsFunc(reps, func(r *report.Template) bool { return r.Result != report.Skip }) {
		return exitError{ExitFailed}
	}
	return nil
}

// failT is the GinkgoTestingT of an in-process run.
type failT struct{ failed bool }

func (t *failT) Fail() { t.failed = true }

// verifyParallel runs one child process per template, at most n at once
// (and no more than the host's free memory holds), and merges their reports.
func (a *app) verifyParallel(ctx context.Context, out io.Writer, o verifyOptions, p *verifyPlan) error {
	names := p.names
	// --output json: the children's event lines (their stdout) pass
	// through to stdout as they are; every human line goes to stderr.
	var events io.Writer
	if format, _ := o.output.get(); format == outputJSON {
		events, out = out, a.streams.ErrOut
	}
	// On a terminal a live status line shows every running child's phase,
	// read from the children's JSON event lines; their human lines (plain,
	// one per event) scroll above it.
	tty := isTerminal(out)
	if a.terminal != nil {
		tty = a.terminal(out)
	}
	rend := newRenderer(out, nil, tty, o.quiet, a.verbose)
	rend.parallel = true
	rctx, stopRender := context.WithCancel(ctx)
	rendered := make(chan struct{})
	go func() { defer close(rendered); rend.Run(rctx) }()
	defer func() { stopRender(); <-rendered }()
	if tty {
		out = rend.Writer()
	}
	childJSON := events != nil || (tty && !o.quiet)
	self := a.self
	if self == "" {
		var err error
		if self, err = os.Executable(); err != nil {
			return err
		}
	}
	n := min(o.parallel, len(names), runtime.NumCPU())
	if mem, err := memAvailable(); err == nil && mem > 0 {
		// Every guest takes its template's memory plus QEMU's own overhead.
		var most int64
		for _, name := range names {
			if t, err := p.cat.Resolve(name); err == nil && t.MemoryBytes() > most {
				most = t.MemoryBytes()
			}
		}
		if most > 0 {
			fit := int(mem / (most + 512<<20))
			if fit < 1 {
				fit = 1
			}
			if fit < n {
				fmt.Fprintf(out, "verify: running %d at once, not %d: free memory %d MiB\n", fit, n, mem>>20)
				n = fit
			}
		}
	}
	reportDir := p.cfg.ReportDir
	if reportDir == "" {
		var err error
		reportDir, err = os.MkdirTemp("", "guestcatalog-reports-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(reportDir)
	}
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cmd := exec.CommandContext(ctx, self, a.childArgs(o, p, name, filepath.Join(reportDir, name, "run"), childJSON)...)
			cmd.Env = a.env
			// The child ends within a second of SIGINT like this process.
			cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
			cmd.WaitDelay = 2 * time.Second
			w := &prefixWriter{mu: &mu, w: out, prefix: "[" + name + "] "}
			cmd.Stdout, cmd.Stderr = w, w
			var ev *eventLineWriter
			if childJSON {
				ev = &eventLineWriter{mu: &mu, events: events}
				if tty {
					ev.rend = rend
				}
				cmd.Stdout = ev
			}
			// With *os.File-less writers exec copies the output itself and
			// Wait returns only once both copies are done.
			_ = cmd.Run()
			w.Flush()
			if ev != nil {
				ev.Flush()
			}
			rend.Done(name)
		}()
	}
	wg.Wait()
	var reps []*report.Template
	var junits []string
	for _, name := range names {
		runDir := filepath.Join(reportDir, name, "run")
		r, err := report.ReadFile(filepath.Join(runDir, name, "report.json"))
		if err != nil {
			r = &report.Template{Template: name, Result: report.Fail, Reason: "the verify process left no report: " + err.Error()}
		}
		if p.cfg.ReportDir != "" {
			_ = r.WriteFile(filepath.Join(reportDir, name, "report.json"))
		}
		reps = append(reps, r)
		junits = append(junits, filepath.Join(runDir, "junit.xml"))
	}
	if p.cfg.ReportDir != "" {
		if err := mergeJUnit(junits, filepath.Join(reportDir, "junit.xml")); err != nil {
			fmt.Fprintln(a.streams.ErrOut, "verify: merging JUnit reports:", err)
		} else if err := addJUnitProperties(filepath.Join(reportDir, "junit.xml"), junitProperties(version.Get())); err != nil {
			fmt.Fprintln(a.streams.ErrOut, "verify: JUnit properties:", err)
		}
		for _, name := range names {
			_ = os.RemoveAll(filepath.Join(reportDir, name, "run"))
		}
	}
	fmt.Fprintln(out)
	ok := report.Summary(out, reps)
	printSummaryTable(out, reps)
	return verdict(ok, reps, p.cfg.FailOnSkip)
}

// childArgs is the command line of one template's child process: the
// same configuration, that template alone, its own report dir.
func (a *app) childArgs(o verifyOptions, p *verifyPlan, name, reportDir string, jsonEvents bool) []string {
	c := p.cfg
	args := []string{"verify", name, "--accel", c.Accel, "--arch", c.Arch, "--report-dir", reportDir,
		"--artifacts", c.ArtifactsDir, "--timeout", o.timeout.String(), "--cache-dir", c.CacheDir,
		"--keep-on-failure=" + strconv.FormatBool(c.KeepOnFailure), "--no-reuse=" + strconv.FormatBool(!c.Reuse),
		"--offline=" + strconv.FormatBool(c.Offline), "--no-builtin=" + strconv.FormatBool(c.NoBuiltin),
		"--fail-on-skip=false", "--allow-unpinned=" + strconv.FormatBool(c.AllowUnpinned)}
	if o.labelFilter != "" {
		args = append(args, "--label-filter", o.labelFilter)
	}
	if c.IntervalsFile != "" {
		args = append(args, "--intervals", c.IntervalsFile)
	}
	for _, s := range o.sets {
		args = append(args, "--set", s)
	}
	// Mirrors and catalogs given as flags; the child reads the same
	// environment (cmd.Env), which holds the rest.
	for _, m := range a.mirrors {
		args = append(args, "--mirror", m)
	}
	for _, cat := range c.Catalogs {
		args = append(args, "--catalog", cat)
	}
	if a.verbose {
		args = append(args, "-v")
	}
	if o.quiet {
		args = append(args, "-q")
	}
	if jsonEvents {
		args = append(args, "--output", "json")
	}
	return args
}

// eventLineWriter takes a verify --parallel child's stdout: JSON lines of
// events. Each goes to events untouched (--output json) and, on a
// terminal, to the live status line; lines of any length pass.
type eventLineWriter struct {
	mu     *sync.Mutex // shared with the human lines' writers
	events io.Writer   // nil: not asked for
	rend   *renderer   // nil: no status line
	buf    []byte
}

func (e *eventLineWriter) Write(b []byte) (int, error) {
	e.buf = append(e.buf, b...)
	for {
		i := bytes.IndexByte(e.buf, '\n')
		if i < 0 {
			break
		}
		e.emit(e.buf[:i+1])
		e.buf = e.buf[i+1:]
	}
	return len(b), nil
}

// Flush passes a last line that has no newline.
func (e *eventLineWriter) Flush() {
	if len(e.buf) > 0 {
		e.emit(append(e.buf, '\n'))
		e.buf = nil
	}
}

func (e *eventLineWriter) emit(line []byte) {
	if e.events != nil {
		e.mu.Lock()
		_, _ = e.events.Write(line)
		e.mu.Unlock()
	}
	if e.rend != nil {
		if ev, ok := parseJSONEvent(line); ok {
			e.rend.Observe(ev)
		}
	}
}

// prefixWriter writes whole lines, each behind a prefix, under a shared
// lock; lines of any length pass (no bufio.Scanner token limit).
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		p.emit(p.buf[:i+1])
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

// Flush writes a last line that has no newline.
func (p *prefixWriter) Flush() {
	if len(p.buf) > 0 {
		p.emit(append(p.buf, '\n'))
		p.buf = nil
	}
}

func (p *prefixWriter) emit(line []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// A child's event lines carry their template already
	// ("15:04:05 [name] phase ..."): no second prefix.
	// One Write per line: a terminal's status line is redrawn after each.
	if !bytes.HasPrefix(line[min(len(line), len("15:04:05 ")):], []byte(p.prefix)) {
		line = append([]byte(p.prefix), line...)
	}
	_, _ = p.w.Write(line)
}

var errNoJUnit = errors.New("no JUnit report to merge")
