package main

import (
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
)

// registerFlagCompletions completes the values of flags that take one of a
// known set (on every command that has them): --accel, --arch, --tier,
// --label-filter (the labels of the run's catalog).
func (a *app) registerFlagCompletions(root *cobra.Command) {
	fixed := map[string][]string{
		"accel": {qemu.AccelAuto, qemu.AccelKVM, qemu.AccelTCG},
		"arch":  {catalog.ArchX8664, catalog.ArchAarch64},
		"tier":  {catalog.TierNightly, catalog.TierExperimental},
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for name, values := range fixed {
			if c.Flags().Lookup(name) != nil {
				_ = c.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
			}
		}
		if c.Flags().Lookup("label-filter") != nil {
			_ = c.RegisterFlagCompletionFunc("label-filter", a.completeLabels)
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
}

// completeLabels completes the last label of a label expression
// ("engine:docker && dist" offers "engine:docker && distro:debian-13", ...).
func (a *app) completeLabels(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	c, err := a.loadCatalog(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	i := strings.LastIndexAny(toComplete, " &|!(),") + 1
	head, last := toComplete[:i], toComplete[i:]
	var out []cobra.Completion
	for _, l := range catalogLabels(c) {
		if strings.HasPrefix(l, last) {
			out = append(out, head+l)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}

// catalogLabels are the labels verify's specs carry for the catalog's
// templates (framework.Run.Labels), sorted, each once.
func catalogLabels(c *catalog.Catalog) []string {
	var ls []string
	for _, t := range c.Templates() {
		engine := framework.EngineOf(t)
		if engine == "" {
			engine = "none"
		}
		ls = append(ls, "template:"+t.Name, "engine:"+engine, "tier:"+t.Tier)
		if t.Distro != nil {
			d := t.Distro.Name
			if t.Distro.Release != "" {
				d += "-" + t.Distro.Release
			}
			ls = append(ls, "distro:"+d)
		}
		for _, arch := range t.Arches() {
			ls = append(ls, "arch:"+arch)
		}
	}
	slices.Sort(ls)
	return slices.Compact(ls)
}
