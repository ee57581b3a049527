package catalog

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// ErrUnknownTemplate is returned (wrapped, with suggestions) by
// [Catalog.Resolve] for a name that is neither a template nor an alias.
var ErrUnknownTemplate = errors.New("unknown template")

// Catalog is a loaded set of templates and fragments. It is safe for
// concurrent use: resolving never modifies it.
type Catalog struct {
	docs    map[string]*document // in effect, by name
	aliases map[string]*document // alias → template
	all     []*document          // every document loaded, in load order
	// baseDepth is the longest base chain composed (Limits.BaseDepth);
	// zero means DefaultBaseDepth.
	baseDepth int
}

// ResolveOption changes how [Catalog.Resolve] builds a template.
type ResolveOption func(*resolveOptions)

type resolveOptions struct {
	params map[string]string
}

// WithParams overrides declared params (`--set name=value`). Naming a param
// the template does not declare is an error that lists the declared ones.
// Values are data: scripts read them as PARAM_<name>, never evaluated.
func WithParams(params map[string]string) ResolveOption {
	return func(o *resolveOptions) {
		if o.params == nil {
			o.params = map[string]string{}
		}
		maps.Copy(o.params, params)
	}
}

// Resolve returns the template named name (or aliased so): composed from
// its bases, defaulted, validated, with the steps, probes and checks whose
// `when` does not match its distro or family dropped (arch filtering is
// left to [Template.StepsFor], [Template.ProbesFor] and [Template.ChecksFor]). The template is the
// caller's to modify. An invalid template's error is a [Problems] listing
// everything wrong; an unknown name wraps [ErrUnknownTemplate].
func (c *Catalog) Resolve(name string, opts ...ResolveOption) (*Template, error) {
	d, err := c.lookupTemplate(name)
	if err != nil {
		return nil, err
	}
	r := c.check(d, opts...)
	if !r.OK() {
		return nil, r.Errors
	}
	return r.Template, nil
}

// Check resolves a template like [Catalog.Resolve] and reports everything:
// errors and warnings, each with its position. It also accepts a fragment's
// name: the fragment is composed and its own fields checked.
func (c *Catalog) Check(name string, opts ...ResolveOption) (Result, error) {
	if d, ok := c.docs[name]; ok { // a fragment too
		return c.check(d, opts...), nil
	}
	d, err := c.lookupTemplate(name)
	if err != nil {
		return Result{}, err
	}
	return c.check(d, opts...), nil
}

func (c *Catalog) lookupTemplate(name string) (*document, error) {
	d, ok := c.docs[name]
	if !ok {
		d, ok = c.aliases[name]
	}
	if !ok {
		return nil, fmt.Errorf("%w %q%s", ErrUnknownTemplate, name, didYouMean(suggest(name, c.templateNames(true), 3)))
	}
	if d.kind == KindFragment {
		return nil, fmt.Errorf("%s is a fragment: it is composed into templates with base:, not used alone", Quote(name))
	}
	return d, nil
}

// check composes, defaults and validates one document.
func (c *Catalog) check(d *document, opts ...ResolveOption) Result {
	r := Result{Name: d.label(), Kind: d.kind, Source: d.source}
	if d.t == nil {
		r.Errors = slices.Clone(d.loadErrs)
		return r
	}
	var o resolveOptions
	for _, opt := range opts {
		opt(&o)
	}
	comp := c.compose(d)
	for _, cd := range comp.chain[:len(comp.chain)-1] {
		r.Bases = append(r.Bases, cd.name)
	}
	// problems of each document, in composition order (bases first, as a
	// reader of the template meets them)
	for _, cd := range comp.chain {
		own := slices.Concat(cd.loadErrs, cd.errs)
		sortProblems(own)
		r.Errors = appendUnique(r.Errors, own...)
		r.Warnings = appendUnique(r.Warnings, cd.warns...)
	}
	r.Errors = append(r.Errors, comp.problems...)
	t := comp.t
	if d.kind == KindTemplate {
		Default(t)
		if len(comp.problems) == 0 { // a missing base would only add noise here
			var steps []Step
			var probes []Probe
			for i, s := range t.Provision {
				if comp.stepFrom[i].t.Engine != nil {
					steps = append(steps, s)
				}
			}
			for i, p := range t.Probes {
				if comp.probeFrom[i].t.Engine != nil {
					probes = append(probes, p)
				}
			}
			r.Errors = append(r.Errors, checkTemplate(t, rootLocator(d), steps, probes, d.layer == 0)...)
			r.Errors = append(r.Errors, composedChecks(comp)...)
		}
		if len(comp.problems) == 0 {
			r.Errors = append(r.Errors, checkArtifactParams(t, rootLocator(d), o.params)...)
		}
		r.Errors = append(r.Errors, applyParams(t, o.params)...)
		t.Provision = slices.DeleteFunc(t.Provision, func(s Step) bool { return !s.When.matchesDistro(t.Distro) })
		t.Probes = slices.DeleteFunc(t.Probes, func(p Probe) bool { return !p.When.matchesDistro(t.Distro) })
		t.Checks = slices.DeleteFunc(t.Checks, func(c Check) bool { return !c.When.matchesDistro(t.Distro) })
	}
	if r.OK() {
		r.Template = t
	}
	return r
}

// rootLocator places problems of the whole template: on the field when the
// template itself sets it, else on its base list (where the field should
// have come from), else on the document.
func rootLocator(d *document) func(string) Position {
	return func(field string) Position {
		if _, ok := d.pos.paths[field]; ok || field == "name" {
			return d.locate(field)
		}
		if _, ok := d.pos.paths["base"]; ok {
			return d.locate("base")
		}
		return d.locate(field)
	}
}

func applyParams(t *Template, params map[string]string) Problems {
	var ps Problems
	for _, k := range slices.Sorted(maps.Keys(params)) {
		if _, ok := t.Params[k]; !ok {
			declared := "none"
			if len(t.Params) > 0 {
				declared = strings.Join(slices.Sorted(maps.Keys(t.Params)), ", ")
			}
			ps = append(ps, Problem{Field: "params", Message: fmt.Sprintf("%s declares no param %q (declared: %s)", Quote(t.Name), k, Sanitize(declared))})
			continue
		}
		t.Params[k] = params[k]
	}
	return ps
}

// Templates returns every template (kind Template) resolved, sorted by
// name. A template that does not resolve is left out; [Catalog.CheckAll]
// says why.
func (c *Catalog) Templates() []*Template {
	var out []*Template
	for _, name := range c.templateNames(false) {
		if t, err := c.Resolve(name); err == nil {
			out = append(out, t)
		}
	}
	return out
}

// Fragments returns the fragments as loaded (not composed), sorted by name.
func (c *Catalog) Fragments() []*Template {
	var out []*Template
	for _, name := range slices.Sorted(maps.Keys(c.docs)) {
		if d := c.docs[name]; d.t != nil && d.kind == KindFragment {
			out = append(out, d.t.DeepCopy())
		}
	}
	return out
}

// names returns the names of every template and fragment, sorted.
func (c *Catalog) names() []string {
	return slices.Sorted(maps.Keys(c.docs))
}

// templateNames returns the template names, sorted, and their aliases.
func (c *Catalog) templateNames(withAliases bool) []string {
	var out []string
	for name, d := range c.docs {
		if d.kind == KindTemplate {
			out = append(out, name)
		}
	}
	if withAliases {
		out = slices.AppendSeq(out, maps.Keys(c.aliases))
	}
	slices.Sort(out)
	return out
}

// CheckAll checks the whole catalog: every template (with the problems of
// the fragments it is composed from), every fragment no template uses, and
// every document that failed to load; sorted by name.
func (c *Catalog) CheckAll() []Result {
	return c.checkSelected(func(*document) bool { return true })
}

// CheckFiles checks what [WithPaths] added: the templates and fragments of
// the files and directories named, and every template composed from one of
// them (a shipped template using a fragment the files replace).
func (c *Catalog) CheckFiles() []Result {
	return c.checkSelected(func(d *document) bool { return d.layer > 0 })
}

func (c *Catalog) checkSelected(selected func(*document) bool) []Result {
	var out []Result
	used := map[*document]bool{}
	for _, d := range c.effective() {
		if d.t == nil || d.kind != KindTemplate {
			continue
		}
		r := c.check(d)
		pick := selected(d)
		for _, b := range r.Bases {
			pick = pick || selected(c.docs[b])
		}
		c.markBases(d, used)
		if pick {
			out = append(out, r)
		}
	}
	// A document no template uses is checked alone, with its bases. The
	// documents no other document names as a base come first, and their
	// bases are checked through them, not once more each: a chain of n
	// fragments is composed once, not n times. What is left (documents in
	// or under a base cycle) is checked one by one, each composition
	// bounded by the base depth limit.
	referenced := map[*document]bool{}
	for _, d := range c.effective() {
		if d.t != nil {
			for _, b := range d.t.Base {
				if bd, ok := c.docs[b]; ok && bd != d {
					referenced[bd] = true
				}
			}
		}
	}
	for _, roots := range []bool{true, false} {
		for _, d := range c.all {
			if used[d] || d.replaced || (roots && referenced[d]) {
				continue
			}
			if d.t != nil && d.kind == KindTemplate && !d.duplicate {
				continue // checked above
			}
			used[d] = true
			r := c.check(d)
			pick := selected(d)
			for _, b := range r.Bases {
				pick = pick || selected(c.docs[b])
			}
			if roots {
				c.markBases(d, used)
			}
			if pick {
				out = append(out, r)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Result) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// markBases marks every document under d (its bases, theirs, and so on,
// past the base depth limit too) as checked through d.
func (c *Catalog) markBases(d *document, used map[*document]bool) {
	todo := []*document{d}
	for len(todo) > 0 {
		d := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if d.t == nil {
			continue
		}
		for _, b := range d.t.Base {
			if bd, ok := c.docs[b]; ok && !used[bd] {
				used[bd] = true
				todo = append(todo, bd)
			}
		}
	}
}
