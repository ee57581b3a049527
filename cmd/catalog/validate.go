package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/guestcatalog/guestcatalog/catalog"
)

func newValidateCmd(a *app) *cobra.Command {
	var o outputOptions
	cmd := &cobra.Command{
		Use:   "validate [NAME|FILE|DIR...]",
		Short: "Check templates: strict load, composition, defaults, validation",
		Long: `validate checks templates without booting anything. With no argument it checks
every shipped template; with FILEs (or directories of *.yaml files) it checks
the templates and fragments in them, layered over the shipped catalog: a file's
template may use shipped fragments in its base:, and a file that redefines a
shipped fragment also re-checks the shipped templates composed from it.

It prints one line per template, PASS NAME or FAIL NAME, with every problem
of a failing template under it as file:line:col: field: message; problems in
a fragment are reported with each template composed from it. A fragment no
template uses is checked and reported alone. WARN lines are not failures:
they say what deserves a look (an image without a digest, for a stated reason),
each once.

What is checked: YAML syntax and duplicate keys; unknown fields and wrong
types; apiVersion and kind; base: references, cycles and fragments composed
twice; every field's own rules (digests, URLs, sizes, names of params and env,
steps consistent with their mode, ports); then the composed template: a
distro, an image, the name <distro>-<release>[-<engine>], an engine with
provisioning for the distro; and aliases unique across the catalog.

With --output json (or yaml) it prints {"results": [...], "checked", "passed",
"failed", "warnings"}: per template its name, kind, source, ok and problems,
each with file, line, column, field (the path, e.g. images[0].digest),
message and severity (error or warning).

The exit code is 2 (invalid input) if any template fails, else 0.`,
		Example: `  catalog validate
  catalog validate my-template.yaml
  catalog validate catalog/templates/engines/docker.yaml
  catalog validate -o json my-template.yaml | jq '.results[].problems[]'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := o.get()
			if err != nil {
				return err
			}
			return a.runValidate(cmd.Context(), cmd.OutOrStdout(), args, f)
		},
	}
	addOutputFlag(cmd, &o, false)
	return cmd
}

func (a *app) runValidate(ctx context.Context, out io.Writer, args []string, format string) error {
	var files, names []string
	for _, arg := range args {
		if isPath(arg) {
			files = append(files, arg)
		} else {
			names = append(names, arg)
		}
	}
	c, err := a.loadCatalog(ctx, files...) // load errors are in the results
	if err != nil {
		return err
	}
	var results []catalog.Result
	switch {
	case len(args) == 0:
		results = c.CheckAll()
	case len(files) > 0:
		// TODO(merge b-catalog): only the given files' documents.
		results = c.CheckFiles()
	}
	for _, n := range names {
		r, err := c.Check(n)
		if err != nil {
			return usageError{err}
		}
		results = append(results, r)
	}
	if len(results) == 0 {
		return usagef("no template or fragment in %v", files)
	}
	if format != outputTable {
		rep := validationReportOf(results)
		if err := writeData(out, format, rep); err != nil {
			return err
		}
		if rep.Failed > 0 {
			return exitError{ExitUsage}
		}
		return nil
	}
	failed, warned := 0, 0
	seen := map[string]bool{}
	for _, r := range results {
		if r.OK() {
			fmt.Fprintf(out, "PASS %s\n", catalog.Quote(r.Name))
		} else {
			failed++
			fmt.Fprintf(out, "FAIL %s\n", catalog.Quote(r.Name))
			printProblems(out, r.Errors)
		}
		for _, w := range r.Warnings {
			if s := w.Error(); !seen[s] {
				seen[s] = true
				warned++
				fmt.Fprintf(out, "WARN %s\n", catalog.Sanitize(s))
			}
		}
	}
	fmt.Fprintf(out, "%d checked: %d passed, %d failed, %d warnings\n", len(results), len(results)-failed, failed, warned)
	if failed > 0 {
		return exitError{ExitUsage} // an invalid template is invalid input
	}
	return nil
}

func printProblems(out io.Writer, ps catalog.Problems) {
	for _, p := range ps {
		fmt.Fprintf(out, "  %s\n", p.Error())
	}
}
