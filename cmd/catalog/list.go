package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/guestcatalog/guestcatalog/catalog"
)

// listEntry is one template in `catalog list --json`; the nightly matrix
// and other scripts read it, so its keys are stable.
type listEntry struct {
	Name        string   `json:"name"`
	Distro      string   `json:"distro"` // <name>-<release>, as in the label distro:debian-13
	Family      string   `json:"family"`
	Engine      string   `json:"engine"` // "" for a plain distro template
	Arch        []string `json:"arch"`
	Aliases     []string `json:"aliases"`
	Tier        string   `json:"tier"`
	Description string   `json:"description"`
	Source      string   `json:"source"`
	// Unpinned is what the template's guest downloads without a pin
	// (engine.unpinned); absent when nothing.
	Unpinned []catalog.Unpinned `json:"unpinned,omitempty"`
}

func newListCmd(a *app) *cobra.Command {
	var o outputOptions
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the templates of the catalog",
		Long: `list prints every template of the catalog (composed and validated; fragments
such as images/debian-13 and engines/docker are parts, not templates): its
name, distro, engine, the architectures it has images for, its tier (nightly
templates are verified every night, experimental ones on demand) and its
aliases, the short names ` + "`catalog verify`" + ` also accepts.

With --output json (or yaml) it prints a JSON array of objects with the keys name, distro
(<name>-<release>), family, engine ("" for a plain distro), arch (a list),
aliases, tier, description and source, and unpinned (what the guest downloads
without a pin, each with what and reason; absent when nothing) for templates
that verify, up and run skip unless --allow-unpinned.

A template that does not validate is left out and named on stderr; run
` + "`catalog validate`" + ` to see why.`,
		Example: `  catalog list
  catalog list -o json | jq -r '.[] | select(.tier == "nightly") | .name'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := o.get()
			if err != nil {
				return err
			}
			return a.runList(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	addOutputFlag(cmd, &o, true)
	return cmd
}

func (a *app) runList(ctx context.Context, out, errOut io.Writer, format string) error {
	c, err := a.loadCatalog(ctx)
	if err != nil {
		return err
	}
	for _, r := range c.CheckAll() {
		if !r.OK() && r.Kind == catalog.KindTemplate {
			fmt.Fprintf(errOut, "catalog: %s does not validate and is not listed (run catalog validate)\n", r.Name)
		}
	}
	entries := []listEntry{}
	for _, t := range c.Templates() {
		entries = append(entries, newListEntry(t))
	}
	if format != outputTable {
		return writeData(out, format, entries)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDISTRO\tENGINE\tARCH\tTIER\tALIASES")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Distro, orDash(e.Engine),
			orDash(strings.Join(e.Arch, ",")), e.Tier, orDash(strings.Join(e.Aliases, ",")))
	}
	return tw.Flush()
}

func newListEntry(t *catalog.Template) listEntry {
	e := listEntry{
		Name:        t.Name,
		Arch:        t.Arches(),
		Aliases:     append([]string{}, t.Aliases...),
		Tier:        t.Tier,
		Description: t.Description,
		Source:      t.Source,
	}
	if e.Arch == nil {
		e.Arch = []string{}
	}
	if d := t.Distro; d != nil {
		e.Distro, e.Family = d.Name, d.Family
		if d.Release != "" {
			e.Distro += "-" + d.Release
		}
	}
	if t.Engine != nil {
		e.Engine = t.Engine.Name
		e.Unpinned = t.Engine.Unpinned
	}
	return e
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
