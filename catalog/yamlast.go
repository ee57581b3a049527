package catalog

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// This file maps field paths (`images[0].digest`) to positions in a YAML
// document, and checks the shape of a document against the Go types before
// it is decoded, so that every unknown field and every wrongly typed value
// of a document is reported at once, with its path and position.

// fieldPathKey renders a map key or field name as a path element.
var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

func childPath(parent, key string) string {
	if !plainKey.MatchString(key) {
		return fmt.Sprintf("%s[%s]", parent, strconv.Quote(key))
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func indexPath(parent string, i int) string {
	return fmt.Sprintf("%s[%d]", parent, i)
}

// parentPath strips the last element of a path: `images[0].digest` →
// `images[0]` → `images` → "".
func parentPath(p string) string {
	if p == "" {
		return ""
	}
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndex(p, "["); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndex(p, "."); i >= 0 {
		return p[:i]
	}
	return ""
}

// nodeRef is where a field sits in the document: the key's position (zero
// for list items and the root) and the value's.
type nodeRef struct {
	key    Position
	value  Position
	scalar bool
}

// posIndex maps the field paths of one document to positions.
type posIndex struct {
	file  string
	paths map[string]nodeRef
}

func newPosIndex(file string, body ast.Node) *posIndex {
	ix := &posIndex{file: file, paths: map[string]nodeRef{}}
	if body != nil {
		ix.add("", Position{}, body)
	}
	return ix
}

func (ix *posIndex) add(path string, key Position, n ast.Node) {
	n = unwrap(n)
	if n == nil {
		return
	}
	ref := nodeRef{key: key, value: ix.pos(n)}
	switch n := n.(type) {
	case *ast.MappingNode:
		for _, mv := range n.Values {
			ix.add(childPath(path, keyString(mv.Key)), ix.pos(mv.Key), mv.Value)
		}
	case *ast.MappingValueNode:
		ix.add(childPath(path, keyString(n.Key)), ix.pos(n.Key), n.Value)
	case *ast.SequenceNode:
		for i, v := range n.Values {
			ix.add(indexPath(path, i), Position{}, v)
		}
	default:
		ref.scalar = true
	}
	ix.paths[path] = ref
}

func (ix *posIndex) pos(n ast.Node) Position {
	line, col := nodeLineCol(n)
	return Position{File: ix.file, Line: line, Column: col}
}

// locate returns where to report a problem with the field at path: a
// scalar's value, a collection's key (or its first entry for list items),
// or, for a field that is not in the document, the nearest enclosing one.
func (ix *posIndex) locate(path string) Position {
	if ix == nil {
		return Position{}
	}
	for p := path; ; p = parentPath(p) {
		if ref, ok := ix.paths[p]; ok {
			if ref.scalar || ref.key.Line == 0 {
				return ref.value
			}
			return ref.key
		}
		if p == "" {
			return Position{File: ix.file}
		}
	}
}

// pathAt returns the path whose value (or key) starts at line:col, for
// decoder errors that only carry a position.
func (ix *posIndex) pathAt(line, col int) (string, bool) {
	best, found := "", false
	for p, ref := range ix.paths {
		if (ref.value.Line == line && ref.value.Column == col) || (ref.key.Line == line && ref.key.Column == col) {
			// prefer the deepest path (a list item and its first key share a position)
			if !found || len(p) > len(best) {
				best, found = p, true
			}
		}
	}
	return best, found
}

// nodeLineCol is where a node starts as a reader sees it: the first key of
// a block mapping (goccy's own token for it is the first ':').
func nodeLineCol(n ast.Node) (int, int) {
	switch m := n.(type) {
	case *ast.MappingNode:
		if len(m.Values) > 0 && !m.IsFlowStyle {
			return nodeLineCol(m.Values[0])
		}
	case *ast.MappingValueNode:
		return nodeLineCol(m.Key)
	}
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return 0, 0
	}
	return tk.Position.Line, tk.Position.Column
}

// unwrap looks through anchors and tags to the value node.
func unwrap(n ast.Node) ast.Node {
	for {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		default:
			return n
		}
	}
}

func keyString(k ast.MapKeyNode) string {
	if s, ok := unwrap(k).(*ast.StringNode); ok {
		return s.Value
	}
	if tk := k.GetToken(); tk != nil {
		return tk.Value
	}
	return k.String()
}

// mappingValues returns the entries of a mapping node, or false if n is
// not a mapping.
func mappingValues(n ast.Node) ([]*ast.MappingValueNode, bool) {
	switch m := n.(type) {
	case *ast.MappingNode:
		return m.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{m}, true
	}
	return nil, false
}

// describeNode names a node's YAML type for messages: "a string", "a list".
func describeNode(n ast.Node) string {
	switch n.Type() {
	case ast.NullType:
		return "null"
	case ast.BoolType:
		return "a boolean"
	case ast.IntegerType:
		return "an integer"
	case ast.FloatType, ast.InfinityType, ast.NanType:
		return "a number"
	case ast.StringType, ast.LiteralType:
		return "a string"
	case ast.MappingType, ast.MappingValueType:
		return "a mapping"
	case ast.SequenceType:
		return "a list"
	case ast.AliasType:
		return "an alias"
	}
	return "a " + strings.ToLower(n.Type().String())
}

// shapeChecker compares a document's nodes with the Go type it decodes to.
type shapeChecker struct {
	ix       *posIndex
	problems Problems
	bad      map[ast.Node]bool // the nodes (values, or keys of unknown fields) that failed
}

func (sc *shapeChecker) fail(path string, n ast.Node, format string, args ...any) {
	sc.markBad(n)
	sc.problems = append(sc.problems, Problem{Pos: sc.ix.pos(n), Field: path, Message: fmt.Sprintf(format, args...)})
}

func (sc *shapeChecker) check(path string, n ast.Node, t reflect.Type) {
	raw := n
	n = unwrap(n)
	if n == nil {
		return
	}
	if _, ok := n.(*ast.AliasNode); ok {
		return // the anchored value is checked where it is defined
	}
	if n.Type() == ast.NullType {
		// `key:` with nothing after it: point at the key
		p := sc.ix.pos(n)
		if ref, ok := sc.ix.paths[path]; ok && ref.key.Line > 0 {
			p = ref.key
		}
		sc.markBad(n)
		sc.problems = append(sc.problems, Problem{Pos: p, Field: path, Message: "must not be null (give a value or remove the key)"})
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		values, ok := mappingValues(n)
		if !ok {
			sc.fail(path, n, "must be a mapping, not %s", describeNode(n))
			return
		}
		fields := yamlFields(t)
		for _, mv := range values {
			if mv.Key.IsMergeKey() {
				sc.fail(path, mv.Key, "merge keys (<<) are not supported; compose with base: instead")
				continue
			}
			name := keyString(mv.Key)
			f, ok := fields[name]
			if !ok {
				msg := fmt.Sprintf("unknown field %q", name)
				if s := suggest(name, fieldNames(fields), 1); len(s) > 0 {
					msg += fmt.Sprintf(" (did you mean %s?)", s[0])
				}
				sc.fail(childPath(path, name), mv.Key, "%s", msg)
				continue
			}
			sc.check(childPath(path, name), mv.Value, f.Type)
		}
	case reflect.Map:
		values, ok := mappingValues(n)
		if !ok {
			sc.fail(path, n, "must be a mapping, not %s", describeNode(n))
			return
		}
		for _, mv := range values {
			sc.check(childPath(path, keyString(mv.Key)), mv.Value, t.Elem())
		}
	case reflect.Slice:
		seq, ok := n.(*ast.SequenceNode)
		if !ok {
			sc.fail(path, n, "must be a list, not %s", describeNode(n))
			return
		}
		for i, v := range seq.Values {
			sc.check(indexPath(path, i), v, t.Elem())
		}
	case reflect.String:
		switch n.Type() {
		case ast.StringType, ast.LiteralType:
		case ast.IntegerType, ast.FloatType, ast.BoolType, ast.InfinityType, ast.NanType:
			if tag, ok := raw.(*ast.TagNode); ok && tag.Start.Value == "!!str" {
				return
			}
			sc.fail(path, n, "must be a string, not %s (quote it: %q)", describeNode(n), n.GetToken().Value)
		default:
			sc.fail(path, n, "must be a string, not %s", describeNode(n))
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		if n.Type() != ast.IntegerType {
			sc.fail(path, n, "must be an integer, not %s", describeNode(n))
		}
	case reflect.Bool:
		if n.Type() != ast.BoolType {
			sc.fail(path, n, "must be true or false, not %s", describeNode(n))
		}
	}
}

// yamlFields maps the YAML names of a struct's fields to the fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f
	}
	return out
}

func fieldNames(fields map[string]reflect.StructField) []string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	return names
}
