package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework"
	"github.com/guestcatalog/guestcatalog/framework/config"
)

// isPath says whether a command-line argument names a template file or
// directory rather than a template: it ends in .yaml/.yml, starts like a
// path (/, ./, ../) or names an existing file or directory. A fragment's
// name (images/debian-13) has a slash too, so a slash alone is not enough.
func isPath(arg string) bool {
	if ext := filepath.Ext(arg); ext == ".yaml" || ext == ".yml" {
		return true
	}
	for _, p := range []string{"/", "./", "../", "." + string(filepath.Separator), ".." + string(filepath.Separator)} {
		if strings.HasPrefix(arg, p) {
			return true
		}
	}
	if arg == "." || arg == ".." || filepath.IsAbs(arg) {
		return true
	}
	_, err := os.Stat(arg)
	return err == nil
}

// loadCatalog loads the run's catalog: the built-in templates (unless
// --no-builtin) with the --catalog layers and then extra paths over them.
// A user template that replaces a built-in one is named once on stderr.
func (a *app) loadCatalog(ctx context.Context, extra ...string) (*catalog.Catalog, error) {
	cfg := a.config()
	cfg.Catalogs = append(append([]string(nil), cfg.Catalogs...), extra...)
	if cfg.NoBuiltin && len(cfg.Catalogs) == 0 {
		return nil, usagef("--no-builtin: name at least one --catalog (or a template file)")
	}
	c, err := framework.LoadCatalog(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	for _, s := range c.Shadowed() {
		fmt.Fprintf(a.streams.ErrOut, "catalog: %s from %s replaces the built-in one (%s)\n", s.Name, s.Source, s.Builtin)
	}
	return c, nil
}

// templateArgs loads the catalog with the path arguments layered over it
// and returns it with the templates the arguments name: a path stands for
// the templates it holds, a name (or alias) for itself. An unknown name, a
// path without templates or a template that does not resolve is a usage
// error (exit 2), found before anything is downloaded, built or booted.
func (a *app) templateArgs(ctx context.Context, args []string, opts ...catalog.ResolveOption) (*catalog.Catalog, []string, error) {
	var paths []string
	for _, arg := range args {
		if isPath(arg) {
			paths = append(paths, arg)
		}
	}
	c, err := a.loadCatalog(ctx, paths...)
	if err != nil {
		return nil, nil, err
	}
	var names []string
	var errs []error
	for _, arg := range args {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		from := []string{arg}
		if isPath(arg) {
			if from = c.TemplatesIn(arg); len(from) == 0 {
				errs = append(errs, fmt.Errorf("%s: no template in it (fragments are used through base:)", arg))
				continue
			}
		}
		for _, n := range from {
			t, err := c.Resolve(n, opts...)
			if err != nil {
				errs = append(errs, resolveError(n, err))
				continue
			}
			names = append(names, t.Name)
		}
	}
	if len(errs) > 0 {
		return nil, nil, usageError{errors.Join(errs...)}
	}
	return c, names, nil
}

// resolveError names the template in a resolve error; an invalid
// template's problems come one per line.
func resolveError(name string, err error) error {
	var ps catalog.Problems
	if errors.As(err, &ps) {
		var b strings.Builder
		fmt.Fprintf(&b, "template %s does not validate (run catalog validate):", name)
		for _, p := range ps {
			fmt.Fprintf(&b, "\n  %s", p.Error())
		}
		return errors.New(b.String())
	}
	if errors.Is(err, catalog.ErrUnknownTemplate) {
		return err
	}
	return fmt.Errorf("template %s: %w", name, err)
}

// argTemplates resolves the templates the arguments name (templateArgs).
func (a *app) argTemplates(ctx context.Context, args []string, opts ...catalog.ResolveOption) ([]*catalog.Template, error) {
	c, names, err := a.templateArgs(ctx, args, opts...)
	if err != nil {
		return nil, err
	}
	out := make([]*catalog.Template, 0, len(names))
	for _, n := range names {
		t, err := c.Resolve(n, opts...)
		if err != nil {
			return nil, usageError{resolveError(n, err)}
		}
		out = append(out, t)
	}
	return out, nil
}

// checkArch refuses an arch no template can have.
func (a *app) checkArch(arch string) error {
	c := a.config()
	c.Arch = arch
	if err := c.Validate(config.FlagNames); err != nil {
		return usageError{err}
	}
	return nil
}

// completeTemplates completes template names and aliases from the run's
// catalog (the built-in one with the --catalog layers), and files.
func (a *app) completeTemplates(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	c, err := a.loadCatalog(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveDefault
	}
	var out []cobra.Completion
	for _, t := range c.Templates() {
		for _, n := range append([]string{t.Name}, t.Aliases...) {
			if strings.HasPrefix(n, toComplete) {
				out = append(out, n)
			}
		}
	}
	return out, cobra.ShellCompDirectiveDefault // files too
}
