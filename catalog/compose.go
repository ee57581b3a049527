package catalog

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// MergeRules describes, in Markdown for the README and `--help`, how
// `base:` composes a template; compose below implements exactly this.
var MergeRules = strings.ReplaceAll(mergeRules, "~", "`")

const mergeRules = `A document lists its bases in ~base:~: fragments such as ~images/debian-13~
and ~engines/docker~, or other templates. Each base is composed first (with its
own bases under it), then the bases are applied in order, later bases
overriding earlier ones, and the document itself overrides them all:

- **Scalars and pointers** (~cpus~, ~memory~, ~disk~): the nearest value that is set wins.
- **~distro~, ~engine~, ~user~**: merged field by field, the nearest set field wins;
  ~engine.requires~, ~engine.unpinned~ and ~user.groups~ are unions (bases first, duplicates dropped).
- **Maps** (~env~, ~params~): merged key by key, the nearest value wins.
- **~images~**: alternatives, so the nearest non-empty list replaces the others.
- **~provision~, ~probes~, ~checks~, ~portForwards~, ~mounts~**: concatenated, bases first in
  base order, then the document's own.
- **Not inherited**: ~name~, ~aliases~, ~tier~, ~description~, ~kind~ (and ~base~ itself).

A base may not include the document itself, even indirectly (the error shows
the chain ~a -> b -> a~), and a document is composed at most once into a
template: a fragment reached through two bases is an error, since its
provisioning would run twice. Composition comes before defaults and before
the checks that need the whole template; ~when:~ filters on distro and family
are applied last.
`

// composition is a composed template and where its parts came from.
type composition struct {
	t *Template
	// chain is every document composed, bases before the documents that
	// use them, the root last.
	chain []*document
	// stepFrom[i] and probeFrom[i] are the documents that declared
	// t.Provision[i] and t.Probes[i].
	stepFrom, probeFrom []*document
	// checkFrom[i] declared t.Checks[i], as its checks[checkIndex[i]].
	checkFrom  []*document
	checkIndex []int
	// viaBase is, for each document of the chain, the index in the root's
	// base list through which it came (-1 for the root).
	viaBase  map[*document]int
	problems Problems
}

// compose builds the template of root from its bases, per [MergeRules].
func (c *Catalog) compose(root *document) *composition {
	comp := &composition{t: &Template{}, viaBase: map[*document]int{}}
	c.composeInto(comp, root, nil, -1)
	t, r := comp.t, root.t
	t.APIVersion, t.Kind, t.Name = r.APIVersion, r.Kind, r.Name
	t.Aliases = slices.Clone(r.Aliases)
	t.Description, t.Tier, t.Source = r.Description, r.Tier, r.Source
	t.Base = nil
	return comp
}

func (c *Catalog) composeInto(comp *composition, d *document, stack []*document, via int) {
	stack = append(stack, d)
	for i, name := range d.t.Base {
		field := indexPath("base", i)
		b, ok := c.docs[name]
		if !ok {
			comp.problems = append(comp.problems, Problem{Pos: d.locate(field), Field: field,
				Message: fmt.Sprintf("unknown base %q%s", name, didYouMean(suggest(name, c.names(), 3)))})
			continue
		}
		if at := slices.Index(stack, b); at >= 0 {
			comp.problems = append(comp.problems, Problem{Pos: d.locate(field), Field: field,
				Message: "cycle in base: " + chainText(append(stack[at:len(stack):len(stack)], b))})
			continue
		}
		if len(stack) >= c.maxBaseDepth() {
			comp.problems = append(comp.problems, Problem{Pos: d.locate(field), Field: field,
				Message: fmt.Sprintf("base chain deeper than %d documents (the limit is %d): %s", c.maxBaseDepth(), c.maxBaseDepth(), chainText(append(stack, b)))})
			continue
		}
		if _, composed := comp.viaBase[b]; composed {
			msg := fmt.Sprintf("%s is already composed into this template", Quote(name))
			if v := comp.viaBase[b]; v >= 0 && stack[0].t.Base[v] != name {
				msg += fmt.Sprintf(" (through %s)", Quote(stack[0].t.Base[v]))
			}
			comp.problems = append(comp.problems, Problem{Pos: d.locate(field), Field: field,
				Message: msg + "; a document is composed once, or its provisioning would run twice"})
			continue
		}
		v := via
		if len(stack) == 1 {
			v = i
		}
		if b.t == nil { // failed to load: its own errors are reported with the chain
			comp.chain = append(comp.chain, b)
			comp.viaBase[b] = v
			comp.problems = append(comp.problems, Problem{Pos: d.locate(field), Field: field,
				Message: fmt.Sprintf("base %s failed to load", Quote(name))})
			continue
		}
		c.composeInto(comp, b, stack, v)
	}
	comp.merge(d)
	comp.chain = append(comp.chain, d)
	comp.viaBase[d] = via
}

func (c *Catalog) maxBaseDepth() int {
	if c.baseDepth > 0 {
		return c.baseDepth
	}
	return DefaultBaseDepth
}

// chainText shows a chain of documents, `a -> b -> c`, names quoted when
// they hold anything but printable characters, the middle of a long chain
// left out.
func chainText(chain []*document) string {
	var names []string
	for i, d := range chain {
		if len(chain) > 8 && i == 3 {
			names = append(names, fmt.Sprintf("... (%d more)", len(chain)-6))
		}
		if len(chain) > 8 && i >= 3 && i < len(chain)-3 {
			continue
		}
		names = append(names, Quote(d.name))
	}
	return strings.Join(names, " -> ")
}

// merge applies document d over what is composed so far (d is nearer).
func (comp *composition) merge(d *document) {
	dst, src := comp.t, d.t
	if s := src.Distro; s != nil {
		if dst.Distro == nil {
			dst.Distro = &Distro{}
		}
		setString(&dst.Distro.Name, s.Name)
		setString(&dst.Distro.Release, s.Release)
		setString(&dst.Distro.Family, s.Family)
		setString(&dst.Distro.Init, s.Init)
	}
	if s := src.Engine; s != nil {
		if dst.Engine == nil {
			dst.Engine = &Engine{}
		}
		setString(&dst.Engine.Name, s.Name)
		setString(&dst.Engine.Version, s.Version)
		setString(&dst.Engine.VersionCommand, s.VersionCommand)
		for _, r := range s.Requires {
			if !slices.Contains(dst.Engine.Requires, r) {
				dst.Engine.Requires = append(dst.Engine.Requires, r)
			}
		}
		for _, u := range s.Unpinned {
			if !slices.Contains(dst.Engine.Unpinned, u) {
				dst.Engine.Unpinned = append(dst.Engine.Unpinned, u)
			}
		}
	}
	if len(src.Images) > 0 {
		dst.Images = cloneImages(src.Images)
	}
	if src.CPUs != nil {
		n := *src.CPUs
		dst.CPUs = &n
	}
	setString(&dst.Memory, src.Memory)
	setString(&dst.Disk, src.Disk)
	if s := src.User; s != nil {
		if dst.User == nil {
			dst.User = &User{}
		}
		setString(&dst.User.Name, s.Name)
		setString(&dst.User.Shell, s.Shell)
		if s.Sudo != nil {
			b := *s.Sudo
			dst.User.Sudo = &b
		}
		for _, g := range s.Groups {
			if !slices.Contains(dst.User.Groups, g) {
				dst.User.Groups = append(dst.User.Groups, g)
			}
		}
	}
	dst.Env = mergeMap(dst.Env, src.Env)
	dst.Params = mergeMap(dst.Params, src.Params)
	for _, s := range src.Provision {
		dst.Provision = append(dst.Provision, cloneStep(s))
		comp.stepFrom = append(comp.stepFrom, d)
	}
	for _, p := range src.Probes {
		dst.Probes = append(dst.Probes, cloneProbe(p))
		comp.probeFrom = append(comp.probeFrom, d)
	}
	for i, ck := range src.Checks {
		dst.Checks = append(dst.Checks, cloneCheck(ck))
		comp.checkFrom = append(comp.checkFrom, d)
		comp.checkIndex = append(comp.checkIndex, i)
	}
	dst.PortForwards = append(dst.PortForwards, src.PortForwards...)
	dst.Mounts = append(dst.Mounts, src.Mounts...)
	composeArtifacts(dst, src)
	composeSandbox(dst, src)
}

func setString(dst *string, src string) {
	if src != "" {
		*dst = src
	}
}

func mergeMap(dst, src map[string]string) map[string]string {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = make(map[string]string, len(src))
	}
	maps.Copy(dst, src)
	return dst
}

// DeepCopy returns a copy of t sharing no slice, map or pointer with it.
func (t *Template) DeepCopy() *Template {
	if t == nil {
		return nil
	}
	c := *t
	c.Aliases = slices.Clone(t.Aliases)
	c.Base = slices.Clone(t.Base)
	if t.Distro != nil {
		d := *t.Distro
		c.Distro = &d
	}
	if t.Engine != nil {
		e := *t.Engine
		e.Requires = slices.Clone(t.Engine.Requires)
		e.Unpinned = slices.Clone(t.Engine.Unpinned)
		c.Engine = &e
	}
	c.Images = cloneImages(t.Images)
	if t.CPUs != nil {
		n := *t.CPUs
		c.CPUs = &n
	}
	if t.User != nil {
		u := *t.User
		if u.Sudo != nil {
			b := *u.Sudo
			u.Sudo = &b
		}
		u.Groups = slices.Clone(u.Groups)
		c.User = &u
	}
	c.Env = maps.Clone(t.Env)
	c.Params = maps.Clone(t.Params)
	c.Provision = nil
	for _, s := range t.Provision {
		c.Provision = append(c.Provision, cloneStep(s))
	}
	c.Probes = nil
	for _, p := range t.Probes {
		c.Probes = append(c.Probes, cloneProbe(p))
	}
	c.Checks = nil
	for _, ck := range t.Checks {
		c.Checks = append(c.Checks, cloneCheck(ck))
	}
	c.PortForwards = slices.Clone(t.PortForwards)
	c.Mounts = slices.Clone(t.Mounts)
	c.Artifacts = nil
	for _, a := range t.Artifacts {
		c.Artifacts = append(c.Artifacts, cloneArtifact(a))
	}
	copySandbox(&c, t)
	return &c
}

func cloneImages(in []Image) []Image {
	if in == nil {
		return nil
	}
	out := make([]Image, len(in))
	for i, im := range in {
		out[i] = im
		if im.Build != nil {
			b := *im.Build
			b.Components = slices.Clone(b.Components)
			b.Packages = slices.Clone(b.Packages)
			out[i].Build = &b
		}
	}
	return out
}

func cloneWhen(w *When) *When {
	if w == nil {
		return nil
	}
	return &When{Families: slices.Clone(w.Families), Distros: slices.Clone(w.Distros), Arches: slices.Clone(w.Arches)}
}

func cloneStep(s Step) Step {
	s.When = cloneWhen(s.When)
	s.Packages = slices.Clone(s.Packages)
	return s
}

func cloneProbe(p Probe) Probe {
	p.When = cloneWhen(p.When)
	return p
}
