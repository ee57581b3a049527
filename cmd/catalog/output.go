package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/cloudinit"
)

// Output formats: one convention for every command that prints data
// (--output/-o; --json stays as a deprecated alias where it existed).
const (
	outputTable = "table"
	outputJSON  = "json"
	outputYAML  = "yaml"
)

func outputFormats() []string { return []string{outputTable, outputJSON, outputYAML} }

// outputOptions is a command's --output (and legacy --json) flag.
type outputOptions struct {
	format  string
	legacy  bool // --json
	defFmt  string
	formats []string
	cmd     *cobra.Command // for the --json deprecation notice, on stderr
}

// addOutputFlag adds --output/-o (short form only where the command has no
// -o of its own) with the formats the command supports, and --json as a
// deprecated alias when legacyJSON.
func addOutputFlag(cmd *cobra.Command, o *outputOptions, legacyJSON bool, formats ...string) {
	if len(formats) == 0 {
		formats = outputFormats()
	}
	o.formats, o.defFmt = formats, formats[0]
	usage := fmt.Sprintf("output format: %s", joinOr(formats))
	if cmd.Flags().ShorthandLookup("o") == nil {
		cmd.Flags().StringVarP(&o.format, "output", "o", o.defFmt, usage)
	} else {
		cmd.Flags().StringVar(&o.format, "output", o.defFmt, usage)
	}
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
	if legacyJSON {
		// Not pflag's MarkDeprecated: its notice goes to the command's
		// output, which is stdout here, and would break `--json | jq`.
		cmd.Flags().BoolVar(&o.legacy, "json", false, "deprecated: same as --output json")
		o.cmd = cmd
	}
}

// get is the chosen format, or a usage error (exit 2).
func (o *outputOptions) get() (string, error) {
	f := o.format
	if o.legacy {
		if f != o.defFmt && f != outputJSON {
			return "", usagef("--json and --output %s: choose one", f)
		}
		f = outputJSON
		fmt.Fprintln(o.cmd.ErrOrStderr(), "catalog: --json is deprecated, use --output json")
	}
	if !slices.Contains(o.formats, f) {
		return "", usagef("--output %q: want %s", f, joinOr(o.formats))
	}
	return f, nil
}

func joinOr(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	out := ""
	for i, v := range s[:len(s)-1] {
		if i > 0 {
			out += ", "
		}
		out += v
	}
	return out + " or " + s[len(s)-1]
}

// writeData prints v as JSON (indented) or YAML (the project's one emitter).
func writeData(w io.Writer, format string, v any) error {
	switch format {
	case outputJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case outputYAML:
		// Through JSON, so the keys are the json tags' (camelCase) in
		// both formats.
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		var tree any
		if err := yaml.UnmarshalWithOptions(b, &tree, yaml.UseOrderedMap()); err != nil {
			return err
		}
		y, err := cloudinit.MarshalYAML(tree)
		if err != nil {
			return err
		}
		_, err = w.Write(y)
		return err
	}
	return fmt.Errorf("writeData: format %q", format)
}

// validationReport is `catalog validate --output json|yaml`.
type validationReport struct {
	Results  []validationResult `json:"results"`
	Checked  int                `json:"checked"`
	Passed   int                `json:"passed"`
	Failed   int                `json:"failed"`
	Warnings int                `json:"warnings"`
}

type validationResult struct {
	Name     string              `json:"name"`
	Kind     string              `json:"kind"`
	Source   string              `json:"source,omitempty"`
	OK       bool                `json:"ok"`
	Problems []validationProblem `json:"problems"`
}

type validationProblem struct {
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
	Field    string `json:"field,omitempty"`
	Message  string `json:"message"`
	Severity string `json:"severity"` // error | warning
}

func validationReportOf(results []catalog.Result) validationReport {
	rep := validationReport{Results: []validationResult{}}
	seen := map[string]bool{}
	for _, r := range results {
		vr := validationResult{Name: r.Name, Kind: strings.ToLower(r.Kind), Source: r.Source, OK: r.OK(), Problems: []validationProblem{}}
		for _, p := range r.Errors {
			vr.Problems = append(vr.Problems, problemOf(p, "error"))
		}
		for _, p := range r.Warnings {
			vr.Problems = append(vr.Problems, problemOf(p, "warning"))
			if s := p.Error(); !seen[s] {
				seen[s] = true
				rep.Warnings++
			}
		}
		if vr.OK {
			rep.Passed++
		} else {
			rep.Failed++
		}
		rep.Results = append(rep.Results, vr)
	}
	rep.Checked = len(results)
	return rep
}

func problemOf(p catalog.Problem, severity string) validationProblem {
	return validationProblem{File: p.Pos.File, Line: p.Pos.Line, Column: p.Pos.Column, Field: p.Field, Message: p.Message, Severity: severity}
}
