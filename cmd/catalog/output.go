package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"

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
		cmd.Flags().BoolVar(&o.legacy, "json", false, "same as --output json")
		_ = cmd.Flags().MarkDeprecated("json", "use --output json")
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
