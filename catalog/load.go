package catalog

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// document is one YAML document of the catalog, as loaded.
type document struct {
	t      *Template // nil when the document failed to load
	name   string    // known even when t is nil, if the document had one
	kind   string
	source string // the file, as shown in messages
	layer  int    // 0 embedded, i+1 the documents of the i-th path of WithPaths
	pos    *posIndex

	loadErrs Problems // why t is nil (or a duplicate name)
	errs     Problems // field checks and catalog-wide checks (aliases)
	warns    Problems
	// replaced is set when a document of a later layer has the same name;
	// duplicate when an earlier document of the same layer has it.
	replaced, duplicate bool
}

func (d *document) label() string {
	if d.name != "" {
		return d.name
	}
	return d.source
}

func (d *document) locate(field string) Position {
	if d.pos == nil {
		return Position{File: d.source}
	}
	return d.pos.locate(field)
}

// load builds a catalog from the embedded templates (if withEmbedded) and
// the files named, all in one layer; tests load fixtures alone with
// withEmbedded false.
func load(withEmbedded bool, paths []string) (*Catalog, error) {
	return loadWith(context.Background(), loadOptions{builtin: withEmbedded, paths: paths, oneLayer: true})
}

func (l *loader) loadEmbeddedDocs() ([]*document, error) {
	ctx := l.ctx
	var docs []*document
	err := fs.WalkDir(templatesFS, embeddedRoot, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !isYAML(p) {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		data, err := templatesFS.ReadFile(p)
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, embeddedRoot+"/")
		source := embeddedDisplay + "/" + rel
		fileDocs := l.parseFile(source, data, 0)
		docs = append(docs, fileDocs...)
		checkLayout(rel, fileDocs)
		return nil
	})
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil { // cannot happen with embed.FS; keep it visible if it does
		docs = append(docs, &document{source: embeddedDisplay, loadErrs: Problems{{Pos: Position{File: embeddedDisplay}, Message: err.Error()}}})
	}
	return docs, nil
}

// checkLayout keeps the shipped tree predictable: one document per file,
// named after its path (`images/debian-13.yaml` holds `images/debian-13`).
func checkLayout(rel string, docs []*document) {
	if len(docs) != 1 || docs[0].t == nil {
		if len(docs) > 1 {
			d := docs[1]
			d.loadErrs = append(d.loadErrs, Problem{Pos: d.locate(""), Message: "a shipped template file holds exactly one document"})
		}
		return
	}
	d := docs[0]
	want := strings.TrimSuffix(strings.TrimSuffix(rel, ".yaml"), ".yml")
	if d.name != want {
		d.loadErrs = append(d.loadErrs, Problem{Pos: d.locate("name"), Field: "name",
			Message: fmt.Sprintf("must be %q, the file's path in the catalog (got %q)", want, d.name)})
	}
}

func isYAML(p string) bool {
	return strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")
}

func fileError(p string, err error) *document {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &document{source: p, layer: 1, loadErrs: Problems{{Pos: Position{File: p}, Message: err.Error()}}}
}

// parseFile parses the documents of one file. A syntax error (which
// includes a duplicate key) fails the whole file.
// Before the parser sees the bytes, they are checked against the limits
// (see limits.go).
func (l *loader) parseFile(source string, data []byte, layer int) []*document {
	fail := func(line int, msg string) []*document {
		return []*document{{source: source, layer: layer, loadErrs: Problems{{Pos: Position{File: source, Line: line}, Message: msg}}}}
	}
	if int64(len(data)) > l.lim.FileBytes {
		return fail(0, fmt.Sprintf("the file is %s, over the limit of %s for a template file", formatBytes(int64(len(data))), formatBytes(l.lim.FileBytes)))
	}
	data, msg := checkEncoding(data)
	if msg != "" {
		return fail(0, msg)
	}
	if sp := scanYAML(data, l.lim); sp != nil {
		return fail(sp.line, sp.msg)
	}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return []*document{{source: source, layer: layer, loadErrs: Problems{yamlProblem(nil, source, err)}}}
	}
	var docs []*document
	for _, doc := range f.Docs {
		if l.ctx.Err() != nil {
			return nil
		}
		if doc.Body == nil {
			continue // an empty document, e.g. after a trailing ---
		}
		if l.docs++; l.docs > l.lim.DocumentsTotal {
			return append(docs, &document{source: source, layer: layer, loadErrs: Problems{{Pos: Position{File: source},
				Message: fmt.Sprintf("more than %d documents loaded (the limit is %d)", l.lim.DocumentsTotal, l.lim.DocumentsTotal)}}})
		}
		if n, line := aliasExpansion(doc.Body, l.lim.AliasBytes); n > l.lim.AliasBytes {
			docs = append(docs, &document{source: source, layer: layer, loadErrs: Problems{{Pos: Position{File: source, Line: line},
				Message: fmt.Sprintf("aliases expand to more than %s (the limit is %s)", formatBytes(l.lim.AliasBytes), formatBytes(l.lim.AliasBytes))}}})
			continue
		}
		d := parseDocument(source, doc.Body)
		d.layer = layer
		docs = append(docs, d)
	}
	if len(docs) == 0 {
		return []*document{{source: source, layer: layer, loadErrs: Problems{{Pos: Position{File: source}, Message: "no YAML document in file"}}}}
	}
	return docs
}

// parseDocument checks apiVersion and kind, then the shape of the document
// against the Go types, then decodes it strictly.
func parseDocument(source string, body ast.Node) *document {
	ix := newPosIndex(source, body)
	d := &document{source: source, pos: ix}
	values, ok := mappingValues(unwrap(body))
	if !ok {
		d.loadErrs = Problems{{Pos: ix.locate(""), Message: fmt.Sprintf("a template must be a mapping, not %s", describeNode(unwrap(body)))}}
		return d
	}
	head := map[string]string{} // scalar values at the top, as written
	for _, mv := range values {
		switch v := unwrap(mv.Value).(type) {
		case *ast.StringNode:
			head[keyString(mv.Key)] = v.Value
		case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
			head[keyString(mv.Key)] = v.GetToken().Value
		}
	}
	d.name, d.kind = head["name"], head["kind"]

	if v, ok := head["apiVersion"]; !ok {
		d.loadErrs = append(d.loadErrs, Problem{Pos: ix.locate("apiVersion"), Field: "apiVersion", Message: "must be set to " + APIVersion})
	} else if v != APIVersion {
		d.loadErrs = append(d.loadErrs, Problem{Pos: ix.locate("apiVersion"), Field: "apiVersion", Message: fmt.Sprintf("must be %s, not %q", APIVersion, v)})
	}
	if k, ok := head["kind"]; !ok {
		d.loadErrs = append(d.loadErrs, Problem{Pos: ix.locate("kind"), Field: "kind", Message: "must be set to Template or Fragment"})
	} else if k != KindTemplate && k != KindFragment {
		d.loadErrs = append(d.loadErrs, Problem{Pos: ix.locate("kind"), Field: "kind", Message: fmt.Sprintf("must be Template or Fragment, not %q", k)})
	}
	if len(d.loadErrs) > 0 {
		return d // another version or kind: its fields would only add noise
	}

	sc := &shapeChecker{ix: ix}
	sc.check("", body, reflect.TypeFor[Template]())
	if len(sc.problems) > 0 {
		d.loadErrs = append(sc.problems, sc.checkRest(body)...)
		sortProblems(d.loadErrs)
		return d
	}
	var t Template
	if err := yaml.NodeToValue(body, &t, yaml.Strict()); err != nil {
		d.loadErrs = Problems{yamlProblem(ix, source, err)}
		return d
	}
	t.Source = source
	d.t = &t
	return d
}

var duplicateKey = regexp.MustCompile(`^mapping key "(.*)" already defined at \[(\d+):(\d+)\]$`)

// yamlProblem turns a goccy error into a Problem: goccy's position, the
// field path at that position when known, goccy's message without its
// source excerpt.
func yamlProblem(ix *posIndex, source string, err error) Problem {
	var ye yaml.Error
	if !errors.As(err, &ye) || ye.GetToken() == nil || ye.GetToken().Position == nil {
		return Problem{Pos: Position{File: source}, Message: err.Error()}
	}
	tp := ye.GetToken().Position
	p := Problem{Pos: Position{File: source, Line: tp.Line, Column: tp.Column}, Message: ye.GetMessage()}
	if m := duplicateKey.FindStringSubmatch(p.Message); m != nil {
		p.Message = fmt.Sprintf("duplicate key %q (first defined at %s:%s:%s)", m[1], source, m[2], m[3])
	}
	if ix != nil {
		if f, ok := ix.pathAt(tp.Line, tp.Column); ok {
			p.Field = f
		}
	}
	return p
}

// newCatalog indexes documents by name, layer over layer, then runs the
// per-document and catalog-wide checks.
func newCatalog(docs []*document) *Catalog {
	c := &Catalog{docs: map[string]*document{}, aliases: map[string]*document{}, all: docs}
	for _, d := range docs {
		if d.name == "" {
			continue
		}
		prev, ok := c.docs[d.name]
		switch {
		case !ok:
			c.docs[d.name] = d
		case prev.layer < d.layer:
			prev.replaced = true
			c.docs[d.name] = d
		default:
			d.loadErrs = append(d.loadErrs, Problem{Pos: d.locate("name"), Field: "name",
				Message: fmt.Sprintf("%q is already defined at %s", d.name, prev.locate("name"))})
			d.duplicate = true // not reachable by name: the first one wins
		}
	}
	for _, d := range docs {
		if d.t != nil && !d.replaced && !d.duplicate {
			d.errs, d.warns = checkDocument(d.t, d.locate)
		}
	}
	c.checkAliases()
	return c
}

// checkAliases reports aliases that are another document's name, or
// another template's alias (on both templates).
func (c *Catalog) checkAliases() {
	owners := map[string][]*document{}
	for _, d := range c.effective() {
		if d.t == nil || d.t.Kind != KindTemplate {
			continue
		}
		for i, a := range d.t.Aliases {
			field := indexPath("aliases", i)
			if other, ok := c.docs[a]; ok && other.layer > d.layer {
				continue // a user's template takes a shipped alias: see Shadowed
			} else if ok {
				d.errs = append(d.errs, Problem{Pos: d.locate(field), Field: field,
					Message: fmt.Sprintf("%q is already the name of %s", a, other.describe())})
				continue
			}
			owners[a] = append(owners[a], d)
		}
	}
	for a, ds := range owners {
		c.aliases[a] = ds[0]
		if len(ds) < 2 {
			continue
		}
		for _, d := range ds {
			field := indexPath("aliases", slices.Index(d.t.Aliases, a))
			var others []string
			for _, o := range ds {
				if o != d {
					others = append(others, fmt.Sprintf("%s (%s)", Quote(o.name), o.locate(indexPath("aliases", slices.Index(o.t.Aliases, a)))))
				}
			}
			d.errs = append(d.errs, Problem{Pos: d.locate(field), Field: field,
				Message: fmt.Sprintf("%q is also an alias of %s", a, strings.Join(others, ", "))})
		}
	}
}

// describe names a document for messages: `template debian-13 (file:1:7)`.
func (d *document) describe() string {
	kind := strings.ToLower(d.kind)
	if kind == "" {
		kind = "document"
	}
	return fmt.Sprintf("%s %s (%s)", kind, Quote(d.name), d.locate("name"))
}

// effective returns the documents reachable by name, in load order.
func (c *Catalog) effective() []*document {
	var out []*document
	for _, d := range c.all {
		if !d.replaced && !d.duplicate {
			out = append(out, d)
		}
	}
	return out
}

// loadProblems are the load errors of the documents in effect.
func (c *Catalog) loadProblems() Problems {
	var ps Problems
	for _, d := range c.all {
		if !d.replaced {
			ps = append(ps, d.loadErrs...)
		}
	}
	return ps
}
