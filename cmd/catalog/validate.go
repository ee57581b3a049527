package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/guestcatalog/guestcatalog/catalog"
)

func init() {
	cmd := &cobra.Command{
		Use:   "validate [FILE|DIR...]",
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

The exit code is 1 if any template fails, else 0.`,
		Example: `  catalog validate
  catalog validate my-template.yaml
  catalog validate catalog/templates/engines/docker.yaml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runValidate(cmd.OutOrStdout(), args)
		},
	}
	rootCmd.AddCommand(cmd)
}

func runValidate(out io.Writer, files []string) error {
	var results []catalog.Result
	if len(files) == 0 {
		c, _ := catalog.LoadEmbedded() // load errors are in the results
		results = c.CheckAll()
	} else {
		c, _ := catalog.LoadFiles(files...)
		results = c.CheckFiles()
	}
	if len(results) == 0 {
		return fmt.Errorf("no template or fragment in %v", files)
	}
	failed, warned := 0, 0
	seen := map[string]bool{}
	for _, r := range results {
		if r.OK() {
			fmt.Fprintf(out, "PASS %s\n", r.Name)
		} else {
			failed++
			fmt.Fprintf(out, "FAIL %s\n", r.Name)
			printProblems(out, r.Errors)
		}
		for _, w := range r.Warnings {
			if s := w.Error(); !seen[s] {
				seen[s] = true
				warned++
				fmt.Fprintf(out, "WARN %s\n", s)
			}
		}
	}
	fmt.Fprintf(out, "%d checked: %d passed, %d failed, %d warnings\n", len(results), len(results)-failed, failed, warned)
	if failed > 0 {
		return exitError{1}
	}
	return nil
}

func printProblems(out io.Writer, ps catalog.Problems) {
	for _, p := range ps {
		fmt.Fprintf(out, "  %s\n", p.Error())
	}
}
