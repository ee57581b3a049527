package catalog

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// LoadOption changes what [Load] reads.
type LoadOption func(*loadOptions)

type loadOptions struct {
	builtin bool
	paths   []string
	// oneLayer puts every path in layer 1 (tests' load: files validated
	// together, a name defined twice is an error).
	oneLayer bool
	// limits bound what the files may cost (zero fields are the
	// defaults, DefaultLimits).
	limits Limits
}

// WithPaths layers template files, or directories of *.yaml and *.yml
// files (read recursively, in lexical order), over the built-in catalog, in
// the order given: a document of a later path replaces one of the same name
// from an earlier path or from the built-in catalog, and two documents of
// one path with the same name are an error. Empty paths are ignored (an
// empty entry of a path list). WithPaths may be given several times.
func WithPaths(paths ...string) LoadOption {
	return func(o *loadOptions) {
		for _, p := range paths {
			if p != "" {
				o.paths = append(o.paths, p)
			}
		}
	}
}

// WithoutBuiltin leaves the templates shipped in the binary out: the
// catalog holds the documents of WithPaths alone, and their bases must be
// among them.
func WithoutBuiltin() LoadOption {
	return func(o *loadOptions) { o.builtin = false }
}

// Load loads the shipped templates (unless [WithoutBuiltin]) and layers
// the files and directories of [WithPaths] over them, each path a layer
// of its own, later paths on top.
//
// Load reads each document strictly (unknown fields, duplicate keys, wrong
// types and an unknown apiVersion or kind are errors with file:line:col)
// and checks each document's own fields; it composes nothing. A template is
// composed, defaulted and fully validated by [Catalog.Resolve]. The
// `<distro>-<release>[-<engine>]` name rule binds the shipped templates
// only: a user's template may have any valid name.
//
// The Catalog is returned even when err is a [Problems]: it holds every
// document that loaded, and [Catalog.Check] reports the others. When ctx
// ends, Load stops between files and returns (nil, ctx.Err()).
func Load(ctx context.Context, opts ...LoadOption) (*Catalog, error) {
	o := loadOptions{builtin: true}
	for _, opt := range opts {
		opt(&o)
	}
	return loadWith(ctx, o)
}

// loadWith is Load after its options are applied. Layer 0 is the shipped
// catalog, layer i+1 the documents of o.paths[i].
func loadWith(ctx context.Context, o loadOptions) (*Catalog, error) {
	l := newLoader(ctx, o.limits)
	var docs []*document
	if o.builtin {
		embedded, err := l.loadEmbeddedDocs()
		if err != nil {
			return nil, err
		}
		docs = append(docs, embedded...)
	}
	for i, p := range o.paths {
		layer := i + 1
		if o.oneLayer {
			layer = 1
		}
		var pathDocs []*document
		files, err := layerFiles(ctx, p)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			pathDocs = []*document{fileError(p, err)}
		}
		for _, f := range files {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			pathDocs = append(pathDocs, l.loadFile(f)...)
		}
		for _, d := range pathDocs {
			d.layer = layer
		}
		docs = append(docs, pathDocs...)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := newCatalog(docs)
	c.baseDepth = l.lim.BaseDepth
	return c, c.loadProblems().errOrNil()
}

// layerFiles lists the files of one path: the path itself when it is not a
// directory, else its *.yaml and *.yml files, recursively, sorted.
func layerFiles(ctx context.Context, p string) ([]string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	var files []string
	err = filepath.WalkDir(p, func(f string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !e.IsDir() && isYAML(f) {
			files = append(files, f)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(files)
	return files, nil
}

// Shadow is a user's document that takes a shipped name: a template or
// fragment of the same name (which it replaces), or a template named like a
// shipped template's alias (which then names the user's template).
type Shadow struct {
	Name    string // the name taken
	Source  string // where the user's document is, file:line:col
	Builtin string // where the shipped name is defined, file:line:col
}

// Shadowed lists the user's documents that take a shipped name, sorted by
// name; the CLI says so once for each on stderr.
func (c *Catalog) Shadowed() []Shadow {
	shipped := map[string]*document{}      // shipped names in the catalog, replaced or not
	shippedAlias := map[string]*document{} // shipped aliases of templates in effect
	for _, d := range c.all {
		if d.layer != 0 || d.name == "" || d.duplicate {
			continue
		}
		shipped[d.name] = d
		if d.t != nil && d.kind == KindTemplate && !d.replaced {
			for _, a := range d.t.Aliases {
				shippedAlias[a] = d
			}
		}
	}
	var out []Shadow
	for _, d := range c.effective() {
		if d.layer == 0 || d.name == "" {
			continue
		}
		if b, ok := shipped[d.name]; ok {
			out = append(out, Shadow{Name: d.name, Source: d.locate("name").String(), Builtin: b.locate("name").String()})
		} else if b, ok := shippedAlias[d.name]; ok {
			field := indexPath("aliases", slices.Index(b.t.Aliases, d.name))
			out = append(out, Shadow{Name: d.name, Source: d.locate("name").String(), Builtin: b.locate(field).String()})
		}
	}
	slices.SortFunc(out, func(a, b Shadow) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// TemplatesIn returns the names of the templates (kind Template) loaded
// from path, a file or a directory (every file under it) given to
// [WithPaths] or inside one; sorted. A name taken over by a later path is left out (it
// names that path's template now). A template that failed to load is
// listed when its name is known, so that resolving it reports why.
func (c *Catalog) TemplatesIn(path string) []string {
	want := comparablePath(path)
	var out []string
	for _, d := range c.all {
		if d.layer == 0 || d.name == "" || d.kind != KindTemplate || d.replaced || d.duplicate {
			continue
		}
		if src := comparablePath(d.source); src == want || strings.HasPrefix(src, want+string(filepath.Separator)) {
			out = append(out, d.name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// comparablePath makes "./a/b.yaml", "a/b.yaml" and its absolute form the same.
func comparablePath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return filepath.Clean(p)
}
