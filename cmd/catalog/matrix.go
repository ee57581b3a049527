package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/ci/matrix"
	"github.com/guestcatalog/guestcatalog/ci/summary"
)

// matrixOptions are the flags of `catalog matrix`.
type matrixOptions struct {
	tier         string
	arches       []string
	shard        string
	runners      []string
	indent       bool
	githubOutput string
}

func newMatrixCmd(a *app) *cobra.Command {
	var o matrixOptions
	cmd := &cobra.Command{
		Use:   "matrix [NAME|FILE|DIR...]",
		Short: "Print the nightly CI matrix, derived from the catalog",
		Long: `matrix prints the GitHub Actions matrix of the nightly verification, derived
from the catalog (never a hand-written list): one entry per template of the
tier (nightly by default) and per architecture the template has an image for.

Each entry carries:
  template  the template to verify
  arch      x86_64 or aarch64
  runner    the runs-on label (x86_64: ubuntu-24.04, with KVM; aarch64:
            ubuntu-24.04-arm); change with --runner ARCH=LABEL
  timeout   timeout-minutes, from a table by engine (Kubernetes engines get
            longer), doubled on aarch64, plus a margin for experimental ones
  offline   true when the template verifies with no network: it has a local
            build recipe for the arch and its engine requires nothing from
            outside (the workflow then passes --offline)
  allowUnpinned
            true when the template's guest downloads what the catalog does
            not pin (engine.unpinned): the workflow then passes
            --allow-unpinned, so that the connected runners run it explicitly
  cacheKey  the actions/cache key of its images: a hash of the arch's image
            URLs and digests and of its build recipes

The JSON is {"include":[...]}, what strategy.matrix takes through fromJSON.
--shard i/n keeps part i of n, balanced by estimated minutes (longest jobs
first, each to the least loaded shard), deterministically.

A template that does not validate is an error here, not a silent omission.`,
		Example: `  catalog matrix --indent
  catalog matrix --arch x86_64 --shard 1/3
  catalog matrix --tier all --runner aarch64=my-arm-runner
  catalog matrix --github-output "$GITHUB_OUTPUT"    # matrix=<json>, count=<n>`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runMatrix(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.tier, "tier", catalog.TierNightly, "templates of this tier: nightly, experimental or all")
	f.StringSliceVar(&o.arches, "arch", nil, "only these arches (repeatable or comma-separated: x86_64,aarch64)")
	f.StringVar(&o.shard, "shard", "", "only shard i of n (i/n, 1-based), balanced by estimated minutes")
	f.StringArrayVar(&o.runners, "runner", nil, "runner label for an arch, ARCH=LABEL (repeatable)")
	f.BoolVar(&o.indent, "indent", false, "indent the JSON (default: one line)")
	f.StringVar(&o.githubOutput, "github-output", "",
		"also append matrix=<json> and count=<n> to this file (give it $GITHUB_OUTPUT)")
	return cmd
}

func (a *app) runMatrix(ctx context.Context, out, errOut io.Writer, o matrixOptions, args []string) error {
	shard, err := matrix.ParseShard(o.shard)
	if err != nil {
		return usageError{err}
	}
	runners := matrix.DefaultRunners()
	for _, r := range o.runners {
		arch, label, ok := strings.Cut(r, "=")
		if !ok || arch == "" || label == "" {
			return usagef("--runner %q: want ARCH=LABEL, e.g. aarch64=ubuntu-24.04-arm", r)
		}
		runners[arch] = label
	}
	var templates []*catalog.Template
	if len(args) == 0 {
		templates, err = a.validTemplates(ctx)
	} else {
		templates, err = a.argTemplates(ctx, args)
	}
	if err != nil {
		return err
	}
	m, err := matrix.Build(templates, matrix.Options{Tier: o.tier, Arches: o.arches, Shard: shard, Runners: runners})
	if err != nil {
		return usageError{err} // a flag value matrix.Build refused
	}
	if err := m.WriteJSON(out, o.indent); err != nil {
		return err
	}
	if o.githubOutput != "" {
		f, err := os.OpenFile(o.githubOutput, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("writing the GitHub output: %w", err)
		}
		err = m.WriteGitHubOutput(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing the GitHub output %s: %w", o.githubOutput, err)
		}
	}
	what := "matrix"
	if shard != (matrix.Shard{}) {
		what = "shard " + shard.String()
	}
	fmt.Fprintf(errOut, "catalog matrix: %s: %d jobs, about %d runner-minutes\n", what, len(m.Include), matrix.Minutes(m.Include))
	return nil
}

// validTemplates loads the shipped catalog and refuses to go on when a
// template does not validate: Templates() leaves such templates out, and a
// CI matrix must not lose a template silently.
func (a *app) validTemplates(ctx context.Context) ([]*catalog.Template, error) {
	c, err := a.loadCatalog(ctx)
	if err != nil {
		return nil, err
	}
	var broken []string
	for _, r := range c.CheckAll() {
		if r.Kind == catalog.KindTemplate && !r.OK() {
			broken = append(broken, r.Name)
		}
	}
	if len(broken) > 0 {
		sort.Strings(broken)
		return nil, fmt.Errorf("templates that do not validate would be missing from the matrix: %s (run catalog validate)",
			strings.Join(broken, ", "))
	}
	return c.Templates(), nil
}

// reportSummaryOptions are the flags of `catalog report summary`.
type reportSummaryOptions struct {
	title  string
	output string
	fail   bool
}

func newReportCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "report",
		Short:   "Work with verification reports (report.json)",
		Long:    `report reads the report.json files that ` + "`catalog verify --report-dir`" + ` writes.`,
		Example: `  catalog report summary out/reports`,
	}
	groupCmd(cmd)
	var o reportSummaryOptions
	sum := &cobra.Command{
		Use:   "summary PATH...",
		Short: "Render verification reports as a Markdown summary",
		Long: `summary renders report.json files as Markdown, for a CI run's summary page
($GITHUB_STEP_SUMMARY): the pass/fail/skip counts, one table row per template
and arch (failures first) with the accelerator, image, engine version, time
and checks, then for each failure its phases and failed checks with their
messages.

Each PATH is a report.json, or a directory searched for report.json files.
An unreadable report becomes an ERROR row. The exit code is 0 unless --fail
is given and a template failed or a report could not be read.`,
		Example: `  catalog report summary reports/ >> "$GITHUB_STEP_SUMMARY"
  catalog report summary --title "debian-13-docker (x86_64)" reports/debian-13-docker/report.json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReportSummary(cmd.OutOrStdout(), o, args)
		},
	}
	f := sum.Flags()
	f.StringVar(&o.title, "title", "Guest template verification", "heading of the summary")
	f.StringVarP(&o.output, "output", "o", "", "append to this file instead of printing (e.g. $GITHUB_STEP_SUMMARY)")
	f.BoolVar(&o.fail, "fail", false, "exit 1 when a template failed or a report is unreadable")
	cmd.AddCommand(sum)
	return cmd
}

func runReportSummary(out io.Writer, o reportSummaryOptions, paths []string) error {
	entries, err := summary.Load(paths...)
	if err != nil {
		return err
	}
	if o.output == "" {
		err = summary.Markdown(out, entries, summary.Options{Title: o.title})
	} else {
		var f *os.File
		f, err = os.OpenFile(o.output, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			err = summary.Markdown(f, entries, summary.Options{Title: o.title})
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
	}
	if err != nil {
		return fmt.Errorf("writing the summary: %w", err)
	}
	if o.fail && summary.Count(entries).Failed() {
		return exitError{code: 1}
	}
	return nil
}
