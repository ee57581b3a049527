package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/formatter"
	"github.com/onsi/gomega"
	"github.com/spf13/cobra"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework"
	"github.com/guestcatalog/guestcatalog/framework/report"
	"github.com/guestcatalog/guestcatalog/suites/specs"
)

type verifyOptions struct {
	accel         string
	arch          string
	reportDir     string
	artifacts     string
	keepOnFailure bool
	parallel      int
	labelFilter   string
	noReuse       bool
	timeout       time.Duration
	intervals     string
}

func init() {
	var o verifyOptions
	cmd := &cobra.Command{
		Use:   "verify NAME...",
		Short: "Boot templates under QEMU and check that their engine works",
		Long: `verify proves templates end to end. For each NAME (a template or an alias) it
gets the image (download with digest check, or a local build from Debian's
archive), boots it under QEMU, provisions it through cloud-init exactly as a
user gets it, waits for readiness in named phases (kernel, userspace, ssh,
cloud-init, probes) and runs the template's specs: the base checks (SSH as the
template's user, cloud-init without errors, hostname, sudo, disk grown, no
failed units, clock) and the engine's (run a container, build an image,
publish a port, schedule a pod, ...). These are the same Ginkgo specs that
'go test ./suites/...' runs.

It prints one line per check and a verdict per template: PASS, FAIL (with the
reason and the artifact path) or SKIPPED (with the reason, e.g. the engine's
installer cannot be reached). The exit code is 0 only if nothing failed.

After a template's first successful provisioning its disk is kept in the cache
(keyed by image digest, resolved template and rendered user-data), so the next
verify of the same template starts from it and skips provisioning.`,
		Example: `  catalog verify --offline debian-containerd
  catalog verify --offline --report-dir out/reports debian-docker debian-podman
  catalog verify ubuntu-k3s --artifacts out/artifacts --keep-on-failure`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerify(cmd.Context(), cmd.OutOrStdout(), o, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.accel, "accel", envOr("GUESTCATALOG_ACCEL", "auto"),
		"accelerator: auto (KVM where it works, else TCG, decided by watching the guest), kvm or tcg (env GUESTCATALOG_ACCEL)")
	f.StringVar(&o.arch, "arch", envOr("GUESTCATALOG_ARCH", catalog.HostArch()),
		"guest architecture: x86_64 or aarch64 (a foreign one is emulated under TCG; see catalog doctor) (env GUESTCATALOG_ARCH)")
	f.StringVar(&o.reportDir, "report-dir", os.Getenv("GUESTCATALOG_REPORT_DIR"),
		"write <dir>/<template>/report.json and <dir>/junit.xml")
	f.StringVar(&o.artifacts, "artifacts", envOr("ARTIFACTS", filepath.Join(os.TempDir(), "guestcatalog-artifacts")),
		"per-template artifacts: serial console, QEMU argv, QMP events, cloud-init logs, journal, phase timings (env ARTIFACTS)")
	f.BoolVar(&o.keepOnFailure, "keep-on-failure", false,
		"leave a failed guest running and print the SSH command to get in (stop it with Ctrl-C)")
	f.IntVar(&o.parallel, "parallel", 1,
		"verify up to N templates at once, each in its own process (limited by free memory)")
	f.StringVar(&o.labelFilter, "label-filter", "",
		"run only specs matching this Ginkgo label expression (labels: template:, engine:, distro:, arch:, tier:)")
	f.BoolVar(&o.noReuse, "no-reuse", os.Getenv("GUESTCATALOG_REUSE") == "0",
		"always provision from scratch; do not use or keep provisioned disks")
	f.DurationVar(&o.timeout, "timeout", 2*time.Hour, "give up on the whole run after this long")
	f.StringVar(&o.intervals, "intervals", os.Getenv("GUESTCATALOG_INTERVALS"),
		"YAML file overriding named intervals (timeouts), e.g. default/wait-ssh: 5m")
	rootCmd.AddCommand(cmd)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func runVerify(ctx context.Context, out io.Writer, o verifyOptions, args []string) error {
	// Resolve every name first: a typo fails now, not after a boot.
	c, err := framework.Catalog()
	if err != nil {
		return err
	}
	var names []string
	for _, a := range args {
		t, err := c.Resolve(a)
		if err != nil {
			return err
		}
		names = append(names, t.Name)
	}
	if o.parallel > 1 && len(names) > 1 {
		return verifyParallel(ctx, out, o, names)
	}
	return verifyInProcess(ctx, out, o, names)
}

// verifyInProcess runs the spec tree of the named templates in this process.
func verifyInProcess(ctx context.Context, out io.Writer, o verifyOptions, names []string) error {
	if o.artifacts != "" {
		if err := os.MkdirAll(o.artifacts, 0o755); err != nil {
			return err
		}
	}
	framework.Configure(framework.Config{
		Templates:     names,
		Offline:       global.Offline,
		Accel:         o.accel,
		Arch:          o.arch,
		CacheDir:      global.CacheDir,
		Mirrors:       global.Mirrors,
		ArtifactsDir:  o.artifacts,
		ReportDir:     o.reportDir,
		KeepOnFailure: o.keepOnFailure,
		Reuse:         !o.noReuse,
		IntervalsFile: o.intervals,
		Progress:      os.Stderr,
		Verbose:       global.Verbose,
	})
	framework.PrintChecks(out)
	specs.Templates(names)

	// Ginkgo's own reporter goes to a log file (or stderr with -v); the
	// user sees our lines: one per check, one verdict per template.
	ginkgoLog := io.Discard
	if global.Verbose {
		ginkgoLog = os.Stderr
	} else if o.artifacts != "" {
		f, err := os.Create(filepath.Join(o.artifacts, "ginkgo.log"))
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
	reporterConfig.Verbose = global.Verbose
	reporterConfig.FullTrace = global.Verbose
	if o.reportDir != "" {
		if err := os.MkdirAll(o.reportDir, 0o755); err != nil {
			return err
		}
		reporterConfig.JUnitReport = filepath.Join(o.reportDir, "junit.xml")
	}
	for _, n := range names {
		fmt.Fprintf(out, "%s\n", n)
	}
	gomega.RegisterFailHandler(ginkgo.Fail)
	t := &failT{}
	// RunSpecs handles SIGINT/SIGTERM itself: it interrupts the running
	// node, runs cleanups (guests are shut down) and reports.
	ginkgo.RunSpecs(t, "guestcatalog verify", suiteConfig, reporterConfig)

	fmt.Fprintln(out)
	reps := framework.Reports()
	seen := map[string]bool{}
	for _, r := range reps {
		seen[r.Template] = true
	}
	for _, n := range names {
		if !seen[n] {
			// Filtered out by --label-filter, or the run was interrupted first.
			reps = append(reps, &report.Template{Template: n, Result: report.Skip, Reason: "no spec ran (label filter or interrupted run)"})
		}
	}
	ok := report.Summary(out, reps) && !t.failed
	if kept := framework.Kept(); len(kept) > 0 {
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
	if !ok {
		return exitError{1}
	}
	return nil
}

// failT is the GinkgoTestingT of an in-process run.
type failT struct{ failed bool }

func (t *failT) Fail() { t.failed = true }

// verifyParallel runs one child process per template, at most n at once
// (and no more than the host's free memory holds), and merges their reports.
func verifyParallel(ctx context.Context, out io.Writer, o verifyOptions, names []string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	n := min(o.parallel, len(names), runtime.NumCPU())
	if mem, err := memAvailable(); err == nil && mem > 0 {
		// Every guest takes its template's memory plus QEMU's own overhead.
		c, _ := framework.Catalog()
		var most int64
		for _, name := range names {
			if t, err := c.Resolve(name); err == nil && t.MemoryBytes() > most {
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
	reportDir := o.reportDir
	if reportDir == "" {
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
			args := []string{"verify", name, "--accel", o.accel, "--arch", o.arch, "--report-dir", filepath.Join(reportDir, name, "run"),
				"--artifacts", o.artifacts, "--timeout", o.timeout.String()}
			if o.keepOnFailure {
				args = append(args, "--keep-on-failure")
			}
			if o.noReuse {
				args = append(args, "--no-reuse")
			}
			if o.labelFilter != "" {
				args = append(args, "--label-filter", o.labelFilter)
			}
			if o.intervals != "" {
				args = append(args, "--intervals", o.intervals)
			}
			args = append(args, globalArgs()...)
			cmd := exec.CommandContext(ctx, self, args...)
			cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
			cmd.WaitDelay = time.Minute
			pr, pw := io.Pipe()
			cmd.Stdout, cmd.Stderr = pw, pw
			go func() {
				sc := bufio.NewScanner(pr)
				for sc.Scan() {
					mu.Lock()
					fmt.Fprintf(out, "[%s] %s\n", name, sc.Text())
					mu.Unlock()
				}
			}()
			_ = cmd.Run()
			pw.Close()
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
		if o.reportDir != "" {
			_ = r.WriteFile(filepath.Join(reportDir, name, "report.json"))
		}
		reps = append(reps, r)
		junits = append(junits, filepath.Join(runDir, "junit.xml"))
	}
	if o.reportDir != "" {
		if err := mergeJUnit(junits, filepath.Join(reportDir, "junit.xml")); err != nil {
			fmt.Fprintln(os.Stderr, "verify: merging JUnit reports:", err)
		}
		for _, name := range names {
			_ = os.RemoveAll(filepath.Join(reportDir, name, "run"))
		}
	}
	fmt.Fprintln(out)
	if !report.Summary(out, reps) {
		return exitError{1}
	}
	return nil
}

// globalArgs passes the persistent flags on to a child process.
func globalArgs() []string {
	var a []string
	if global.CacheDir != "" {
		a = append(a, "--cache-dir", global.CacheDir)
	}
	if global.Offline {
		a = append(a, "--offline")
	}
	for _, m := range global.Mirrors {
		a = append(a, "--mirror", m)
	}
	return a
}

var errNoJUnit = errors.New("no JUnit report to merge")
