package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/cloudinit"
)

func newShowCmd(a *app) *cobra.Command {
	var sets []string
	var o outputOptions
	cmd := &cobra.Command{
		Use:   "show NAME|FILE",
		Short: "Print a template composed, defaulted and validated, as YAML",
		Long: `show prints the template NAME (a name or an alias) as the framework uses it:
its base: fragments composed in, defaults filled in, the steps and probes of
other distros dropped. The first comment lines say which documents it was
composed from. Fields come in a fixed order, so the output diffs well. With
--output json it prints the same template as one JSON object (no comments).

A fragment's name (images/debian-13, engines/docker) prints the fragment
composed with its own bases, without defaults.

How base: composes (from the catalog package):

` + catalog.MergeRules,
		Example: `  catalog show ubuntu-k3s
  catalog show ubuntu-k3s --set version=v1.35.4+k3s1 --set mirror=https://mirror.example.org
  catalog show debian-docker -o json | jq .engine`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			params, err := parseSets(sets)
			if err != nil {
				return err
			}
			f, err := o.get()
			if err != nil {
				return err
			}
			return a.runShow(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], params, f)
		},
	}
	addOutputFlag(cmd, &o, false, outputYAML, outputJSON)
	cmd.Flags().StringArrayVar(&sets, "set", nil,
		"override a param the template declares, NAME=VALUE (repeatable); scripts read it as $PARAM_NAME")
	return cmd
}

// parseSets turns repeated --set NAME=VALUE into a map; VALUE may hold '='
// and ','.
func parseSets(sets []string) (map[string]string, error) {
	if len(sets) == 0 {
		return nil, nil
	}
	params := map[string]string{}
	for _, s := range sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, usagef("--set %q: want NAME=VALUE", s)
		}
		params[k] = v
	}
	return params, nil
}

func (a *app) runShow(ctx context.Context, out, errOut io.Writer, name string, params map[string]string, format string) error {
	var paths []string
	if isPath(name) {
		paths = append(paths, name)
	}
	c, err := a.loadCatalog(ctx, paths...)
	if err != nil {
		return err
	}
	var opts []catalog.ResolveOption
	if params != nil {
		opts = append(opts, catalog.WithParams(params))
	}
	if isPath(name) {
		names := c.TemplatesIn(name)
		if len(names) != 1 {
			return usagef("%s holds %d templates; show prints one (name it)", name, len(names))
		}
		name = names[0]
	}
	r, err := c.Check(name, opts...)
	if err != nil {
		return usageError{err}
	}
	if !r.OK() {
		fmt.Fprintf(errOut, "FAIL %s\n", r.Name)
		printProblems(errOut, r.Errors)
		return exitError{ExitUsage}
	}
	if format == outputJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(r.Template)
	}
	b, err := marshalTemplate(r.Template)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", r.Name, err)
	}
	fmt.Fprintf(out, "# %s %s, from %s\n", strings.ToLower(r.Kind), r.Name, r.Source)
	if len(r.Bases) > 0 {
		fmt.Fprintf(out, "# composed from: %s\n", strings.Join(r.Bases, ", "))
	}
	_, err = out.Write(b)
	return err
}

// marshalTemplate encodes a template as YAML with the project's one
// emitter (cloudinit's): struct fields in their declaration order, map keys
// sorted, scripts as literal blocks where they read back exactly.
func marshalTemplate(t *catalog.Template) ([]byte, error) {
	return cloudinit.MarshalYAML(t)
}
