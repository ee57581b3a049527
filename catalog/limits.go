package catalog

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/goccy/go-yaml/ast"
)

// Template files are hostile input: a user's directory may hold anything,
// and the YAML parser (goccy/go-yaml) is quadratic in nesting depth and in
// the number of sibling keys of a mapping (400 KB of `[[[…]]]` drove it to
// 20 GB). So every file is bounded before it reaches the parser, by a
// linear scan of its bytes (scanYAML), and the parsed tree is bounded again
// where the scan cannot see (alias expansion). The limits are far above
// what a template needs (the shipped ones are a few KB, nest 6 levels and
// have fewer than 20 keys per mapping) and far below what hurts: each
// hostile case of BenchmarkHostile is refused in well under a second and
// 200 MB. The file size limit is 1 MiB because goccy's scanner copies a
// block scalar as it grows: a 4 MiB script alone takes about a second of
// CPU and 110 MB of heap to parse, a 1 MiB one a quarter of that.

// Limits bound what loading one catalog may cost.
type Limits struct {
	// FileBytes is the largest template file read; a larger one is refused
	// before it is read.
	FileBytes int64
	// Depth is the deepest nesting of collections (block and flow together).
	Depth int
	// MappingKeys is the most keys of one mapping (or entries of one flow
	// collection).
	MappingKeys int
	// Nodes is the most YAML nodes (keys, list entries, scalars) of a file.
	Nodes int
	// Documents is the most documents of one file, and DocumentsTotal of
	// a whole load.
	Documents, DocumentsTotal int
	// Aliases is the most aliases (*name) of a file; AliasBytes the most
	// bytes of scalars they may expand to, all together.
	Aliases    int
	AliasBytes int64
	// BaseDepth is the longest chain of base: documents under a template.
	BaseDepth int
}

// Default limits; see [Limits].
const (
	DefaultFileBytes      = 1 << 20
	DefaultDepth          = 64
	DefaultMappingKeys    = 1000
	DefaultNodes          = 50_000
	DefaultDocuments      = 1000
	DefaultDocumentsTotal = 10_000
	DefaultAliases        = 1000
	DefaultAliasBytes     = 1 << 20
	DefaultBaseDepth      = 32
)

// DefaultLimits returns the limits Load applies unless told otherwise.
func DefaultLimits() Limits {
	return Limits{
		FileBytes:      DefaultFileBytes,
		Depth:          DefaultDepth,
		MappingKeys:    DefaultMappingKeys,
		Nodes:          DefaultNodes,
		Documents:      DefaultDocuments,
		DocumentsTotal: DefaultDocumentsTotal,
		Aliases:        DefaultAliases,
		AliasBytes:     DefaultAliasBytes,
		BaseDepth:      DefaultBaseDepth,
	}
}

// orDefault fills the zero fields of l with the defaults.
func (l Limits) orDefault() Limits {
	d := DefaultLimits()
	or := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	or(&l.Depth, d.Depth)
	or(&l.MappingKeys, d.MappingKeys)
	or(&l.Nodes, d.Nodes)
	or(&l.Documents, d.Documents)
	or(&l.DocumentsTotal, d.DocumentsTotal)
	or(&l.Aliases, d.Aliases)
	or(&l.BaseDepth, d.BaseDepth)
	if l.FileBytes <= 0 {
		l.FileBytes = d.FileBytes
	}
	if l.AliasBytes <= 0 {
		l.AliasBytes = d.AliasBytes
	}
	return l
}

// formatBytes renders a byte count for messages: "4 MiB", "1536 bytes".
func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// checkEncoding refuses what is not UTF-8 and strips a UTF-8 byte-order
// mark. UTF-16 and UTF-32 are recognised by their byte-order mark, or
// without one by the zero bytes of an ASCII first character (YAML 1.2,
// 5.2), and named in the error.
func checkEncoding(data []byte) ([]byte, string) {
	if b, ok := bytes.CutPrefix(data, []byte{0xEF, 0xBB, 0xBF}); ok {
		data = b
	}
	enc := ""
	switch {
	case bytes.HasPrefix(data, []byte{0, 0, 0xFE, 0xFF}):
		enc = "UTF-32BE (byte-order mark)"
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE, 0, 0}):
		enc = "UTF-32LE (byte-order mark)"
	case bytes.HasPrefix(data, []byte{0xFE, 0xFF}):
		enc = "UTF-16BE (byte-order mark)"
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}):
		enc = "UTF-16LE (byte-order mark)"
	case len(data) >= 4 && data[0] == 0 && data[1] == 0 && data[2] == 0 && data[3] != 0:
		enc = "UTF-32BE"
	case len(data) >= 4 && data[0] != 0 && data[1] == 0 && data[2] == 0 && data[3] == 0:
		enc = "UTF-32LE"
	case len(data) >= 2 && data[0] == 0 && data[1] != 0:
		enc = "UTF-16BE"
	case len(data) >= 2 && data[0] != 0 && data[1] == 0:
		enc = "UTF-16LE"
	}
	if enc != "" {
		return nil, fmt.Sprintf("the file is encoded in %s; a template file must be UTF-8", enc)
	}
	return data, ""
}

// scanProblem is what scanYAML found over a limit (or not text), and on
// which line.
type scanProblem struct {
	line int
	msg  string
}

// scanYAML measures a YAML file without parsing it, in one pass over its
// bytes: nesting depth (block indentation levels plus flow brackets), the
// keys of each block mapping and the entries of each flow collection, a
// count of nodes, documents and aliases. It is an estimate that errs on
// the high side (a plain scalar continued on a more indented line counts as
// a level), exact enough to keep the parser away from the input that makes
// it quadratic. Quoted scalars, comments and block scalars (| and >) are
// skipped. It also refuses NUL bytes and invalid UTF-8.
func scanYAML(data []byte, lim Limits) *scanProblem {
	type level struct {
		col  int // the column of a block collection
		keys int
	}
	var (
		block   []level // block collections open, by column
		flow    []int   // entries of each open flow collection
		nodes   int
		docs    int
		aliases int
		sawBody bool // the current document has content
		quote   byte // the quote of a scalar spanning lines, or 0
		// a block scalar (| or >) holds the lines indented more than
		// scalarCol (the column of its key), and once its first line set
		// it, at least scalarIndent
		scalarCol    = -1
		scalarIndent = -1
	)
	limit := func(line int, what string, n int) *scanProblem {
		return &scanProblem{line, fmt.Sprintf("%s (the limit is %d)", what, n)}
	}
	lineNo := 0
	for len(data) > 0 {
		lineNo++
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		if i := bytes.IndexByte(line, 0); i >= 0 {
			return &scanProblem{lineNo, fmt.Sprintf("a NUL byte at column %d: a template file is text", i+1)}
		}
		if !utf8.Valid(line) {
			return &scanProblem{lineNo, "not valid UTF-8: a template file must be UTF-8 text"}
		}
		indent := 0
		for indent < len(line) && line[indent] == ' ' {
			indent++
		}
		blank := indent == len(line) || line[indent] == '\r' || line[indent] == '#'
		if scalarCol >= 0 {
			if blank && indent == len(line) || (blank && line[indent] == '\r') {
				continue
			}
			if scalarIndent < 0 && indent > scalarCol {
				scalarIndent = indent
			}
			if scalarIndent >= 0 && indent >= scalarIndent {
				continue
			}
			scalarCol, scalarIndent = -1, -1
		}
		if quote == 0 && len(flow) == 0 && (bytes.HasPrefix(line, []byte("---")) || bytes.HasPrefix(line, []byte("..."))) &&
			(len(line) == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r') {
			if line[0] == '-' && (sawBody || docs == 0) {
				docs++
				if docs > lim.Documents {
					return limit(lineNo, "more than "+fmt.Sprint(lim.Documents)+" documents in one file", lim.Documents)
				}
			}
			sawBody = false
			block = block[:0]
			continue
		}
		if blank && quote == 0 {
			continue
		}
		if !sawBody {
			sawBody = true
			if docs == 0 {
				docs = 1
			}
		}
		pos := indent
		if quote == 0 && len(flow) == 0 {
			// block structure: close the collections indented deeper than
			// this line, then open or continue one at its column, and one
			// more for each "- " that starts it
			for len(block) > 0 && block[len(block)-1].col > indent {
				block = block[:len(block)-1]
			}
			if len(block) == 0 || block[len(block)-1].col < indent {
				block = append(block, level{col: indent})
			}
			for pos < len(line) && line[pos] == '-' && (pos+1 == len(line) || line[pos+1] == ' ') {
				nodes++
				pos++
				for pos < len(line) && line[pos] == ' ' {
					pos++
				}
				if pos < len(line) && line[pos] != '#' && line[pos] != '\r' {
					block = append(block, level{col: pos})
				}
			}
			if len(block)+len(flow) > lim.Depth {
				return limit(lineNo, fmt.Sprintf("nesting deeper than %d levels", lim.Depth), lim.Depth)
			}
		}
		// the rest of the line: quoted scalars, flow collections, a key,
		// an alias, a comment, the start of a block scalar. Quotes, flow
		// brackets (outside a flow collection), aliases and | or > mean
		// something only where a value starts, as YAML reads them: in the
		// middle of a plain scalar (`echo it's`, `a[0]`) they are text, and
		// taking them for structure would hide the lines after them.
		lastKey, startsBlockScalar := false, false
		valueStart := true
		prev := byte(' ')
		for i := pos; i < len(line); i++ {
			ch := line[i]
			if quote != 0 {
				switch {
				case quote == '"' && ch == '\\':
					i++
				case ch == quote && quote == '\'' && i+1 < len(line) && line[i+1] == '\'':
					i++
				case ch == quote:
					quote = 0
				}
				prev = ch
				continue
			}
			if ch == ' ' || ch == '\t' || ch == '\r' {
				prev = ch
				continue
			}
			space := prev == ' ' || prev == '\t'
			next := byte(' ')
			if i+1 < len(line) {
				next = line[i+1]
			}
			switch {
			case ch == '#' && space:
				i = len(line)
				continue
			case valueStart && (ch == '"' || ch == '\''):
				quote = ch
				nodes++
				valueStart = false
			case ch == '[' || ch == '{':
				if !valueStart && len(flow) == 0 {
					break // text in a plain scalar
				}
				flow = append(flow, 0)
				nodes++
				if len(block)+len(flow) > lim.Depth {
					return limit(lineNo, fmt.Sprintf("nesting deeper than %d levels", lim.Depth), lim.Depth)
				}
				valueStart = true
				prev = ch
				continue
			case (ch == ']' || ch == '}') && len(flow) > 0:
				flow = flow[:len(flow)-1]
			case ch == ',' && len(flow) > 0:
				nodes++
				flow[len(flow)-1]++
				if flow[len(flow)-1] >= lim.MappingKeys {
					return limit(lineNo, fmt.Sprintf("a flow collection with more than %d entries", lim.MappingKeys), lim.MappingKeys)
				}
				valueStart = true
				prev = ch
				continue
			case ch == ':' && (next == ' ' || next == '\t' || next == '\r' || (len(flow) > 0 && (next == ',' || next == ']' || next == '}'))):
				nodes++
				if len(flow) == 0 && !lastKey {
					lastKey = true
					if len(block) > 0 {
						top := &block[len(block)-1]
						top.keys++
						if top.keys > lim.MappingKeys {
							return limit(lineNo, fmt.Sprintf("a mapping with more than %d keys", lim.MappingKeys), lim.MappingKeys)
						}
					}
				}
				valueStart = true
				prev = ch
				continue
			case valueStart && ch == '-' && (next == ' ' || next == '\t' || i+1 == len(line)) && len(flow) == 0:
				// a block sequence entry not at the start of the line
				// (after a tab, a `? `, or where YAML allows none): a level
				nodes++
				block = append(block, level{col: i + 2})
				if len(block) > lim.Depth {
					return limit(lineNo, fmt.Sprintf("nesting deeper than %d levels", lim.Depth), lim.Depth)
				}
				prev = ch
				continue
			case valueStart && ch == '?' && (next == ' ' || next == '\t'):
				prev = ch
				continue
			case valueStart && (ch == '&' || ch == '!'):
				// an anchor or a tag: the value starts after it
				for i+1 < len(line) && line[i+1] != ' ' && line[i+1] != '\t' && line[i+1] != ',' && line[i+1] != ']' && line[i+1] != '}' {
					i++
				}
				prev = line[i]
				continue
			case valueStart && ch == '*':
				aliases++
				if aliases > lim.Aliases {
					return limit(lineNo, fmt.Sprintf("more than %d aliases in one file", lim.Aliases), lim.Aliases)
				}
			case valueStart && (ch == '|' || ch == '>') && len(flow) == 0 && isBlockScalarHeader(line[i+1:]):
				startsBlockScalar = true
				i = len(line)
				continue
			}
			valueStart = false
			prev = ch
		}
		nodes++
		if nodes > lim.Nodes {
			return limit(lineNo, fmt.Sprintf("more than %d YAML nodes in one file", lim.Nodes), lim.Nodes)
		}
		if startsBlockScalar {
			scalarCol, scalarIndent = indent, -1
			if len(block) > 0 {
				scalarCol = block[len(block)-1].col
			}
		}
	}
	return nil
}

// isBlockScalarHeader reports whether rest (what follows a | or >) is a
// block scalar header: chomping and indentation indicators, then nothing
// but spaces and a comment.
func isBlockScalarHeader(rest []byte) bool {
	i := 0
	for i < len(rest) && i < 2 && (rest[i] == '+' || rest[i] == '-' || (rest[i] >= '1' && rest[i] <= '9')) {
		i++
	}
	rest = bytes.TrimRight(rest[i:], " \t\r")
	return len(rest) == 0 || (rest[0] == ' ' || rest[0] == '\t') && bytes.HasPrefix(bytes.TrimLeft(rest, " \t"), []byte("#"))
}

// aliasExpansion is how many bytes of scalars the aliases of a document
// expand to, each alias counted with everything its anchor holds (aliases
// inside included, memoized per anchor), stopping once over max; and the
// line of the alias that went over.
func aliasExpansion(body ast.Node, max int64) (int64, int) {
	anchors := map[string]int64{} // anchor name → bytes its value holds, expanded
	var total int64
	line := 0
	var size func(n ast.Node) int64
	size = func(n ast.Node) int64 {
		if n == nil || total > max {
			return 0
		}
		switch v := n.(type) {
		case *ast.AnchorNode:
			s := size(v.Value)
			if v.Name != nil {
				anchors[v.Name.GetToken().Value] = s
			}
			return s
		case *ast.AliasNode:
			s := int64(0)
			if v.Value != nil {
				s = anchors[v.Value.GetToken().Value]
			}
			total += s
			if total > max && line == 0 {
				line, _ = nodeLineCol(v)
			}
			return s
		case *ast.TagNode:
			return size(v.Value)
		case *ast.MappingNode:
			var s int64
			for _, mv := range v.Values {
				s += size(mv)
			}
			return s
		case *ast.MappingValueNode:
			return size(v.Key) + size(v.Value)
		case *ast.SequenceNode:
			var s int64
			for _, e := range v.Values {
				s += size(e)
			}
			return s
		case *ast.LiteralNode:
			return int64(len(v.Value.Value)) + 1
		}
		if tk := n.GetToken(); tk != nil {
			return int64(len(tk.Value)) + 1
		}
		return 1
	}
	size(body)
	return total, line
}
