package cloudinit

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
)

// The seed files are emitted by a small YAML writer of our own rather than by
// a general marshaller: the documents have a fixed shape (ordered mappings,
// sequences, strings, booleans) and their scalars are arbitrary template
// text. goccy/go-yaml's encoder was measured to drop carriage returns, to
// write control characters raw and, with literal style, to emit invalid YAML
// for a first line that starts with a space. Here every scalar is written in
// one of three styles chosen by a conservative test (plain, literal block,
// double-quoted with escapes), and every document is decoded again with
// goccy/go-yaml and compared with its source before it leaves Render.

// node is one of: string, bool, int, seq, mapping.
type node any

// seq is a YAML block sequence.
type seq []node

// mapping is a YAML block mapping whose keys keep their insertion order.
type mapping []field

type field struct {
	key   string
	value node
}

// set appends key: value (nil values are skipped, so optional fields read
// naturally at the call site).
func (m *mapping) set(key string, value node) {
	if value == nil {
		return
	}
	*m = append(*m, field{key, value})
}

// encodeYAML writes doc as a block-style YAML document, preceded by the
// given header lines (comments or a `#cloud-config` marker).
func encodeYAML(header []string, doc mapping) ([]byte, error) {
	var b strings.Builder
	for _, h := range header {
		b.WriteString(h)
		b.WriteByte('\n')
	}
	if err := writeMapping(&b, doc, 0, false); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

// writeMapping writes m with its keys at column indent; with inline, the
// first key continues the current line (after a sequence dash).
func writeMapping(b *strings.Builder, m mapping, indent int, inline bool) error {
	if len(m) == 0 {
		return fmt.Errorf("yaml: empty mapping in block context")
	}
	pad := strings.Repeat(" ", indent)
	for i, f := range m {
		if i > 0 || !inline {
			b.WriteString(pad)
		}
		key, err := scalar(f.key)
		if err != nil {
			return fmt.Errorf("yaml key %q: %w", f.key, err)
		}
		b.WriteString(key)
		b.WriteByte(':')
		if err := writeValue(b, f.value, indent); err != nil {
			return fmt.Errorf("%s: %w", f.key, err)
		}
	}
	return nil
}

// writeValue writes the value of a mapping entry or a sequence item; b ends
// with "key:" or "-". The caller's indent is the column of the key or dash.
func writeValue(b *strings.Builder, v node, indent int) error {
	switch v := v.(type) {
	case string:
		return writeString(b, v, indent)
	case bool:
		fmt.Fprintf(b, " %t\n", v)
	case int:
		fmt.Fprintf(b, " %d\n", v)
	case float64:
		// 'g' with a forced decimal point or exponent, so it reads back as
		// a float, never as an int.
		f := strconv.FormatFloat(v, 'g', -1, 64)
		if !strings.ContainsAny(f, ".eEIN") {
			f += ".0"
		}
		fmt.Fprintf(b, " %s\n", f)
	case seq:
		if len(v) == 0 {
			b.WriteString(" []\n")
			return nil
		}
		b.WriteByte('\n')
		return writeSeq(b, v, indent+2, false)
	case mapping:
		if len(v) == 0 {
			b.WriteString(" {}\n")
			return nil
		}
		b.WriteByte('\n')
		return writeMapping(b, v, indent+2, false)
	default:
		return fmt.Errorf("yaml: unsupported value type %T", v)
	}
	return nil
}

// writeSeq writes s with its dashes at column indent; with inline, the first
// dash continues the current line (after an outer sequence dash).
func writeSeq(b *strings.Builder, s seq, indent int, inline bool) error {
	pad := strings.Repeat(" ", indent)
	for i, item := range s {
		if i > 0 || !inline {
			b.WriteString(pad)
		}
		b.WriteByte('-')
		var err error
		switch item := item.(type) {
		case mapping:
			if len(item) == 0 {
				b.WriteString(" {}\n")
				continue
			}
			b.WriteByte(' ')
			err = writeMapping(b, item, indent+2, true)
		case seq:
			if len(item) == 0 {
				b.WriteString(" []\n")
				continue
			}
			b.WriteByte(' ')
			err = writeSeq(b, item, indent+2, true)
		default:
			err = writeValue(b, item, indent)
		}
		if err != nil {
			return fmt.Errorf("[%d]: %w", i, err)
		}
	}
	return nil
}

// writeString writes " scalar\n", or a literal block " |\n" whose content
// lines sit two columns right of indent.
func writeString(b *strings.Builder, s string, indent int) error {
	if !literalSafe(s) {
		q, err := scalar(s)
		if err != nil {
			return err
		}
		b.WriteByte(' ')
		b.WriteString(q)
		b.WriteByte('\n')
		return nil
	}
	body := strings.TrimRight(s, "\n")
	switch trailing := len(s) - len(body); {
	case trailing == 0:
		b.WriteString(" |-\n")
	case trailing == 1:
		b.WriteString(" |\n")
	default:
		b.WriteString(" |+\n")
	}
	pad := strings.Repeat(" ", indent+2)
	for _, line := range strings.Split(body, "\n") {
		if line != "" {
			b.WriteString(pad)
			b.WriteString(line)
		}
		b.WriteByte('\n')
	}
	// Keep-chomped trailing line breaks beyond the one ending the last line.
	for range max(len(s)-len(body)-1, 0) {
		b.WriteByte('\n')
	}
	return nil
}

// scalar returns s as a single-line YAML scalar: plain when that cannot be
// read as anything but the same string, double-quoted otherwise.
func scalar(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("yaml: string is not valid UTF-8")
	}
	if plainSafe(s) {
		return s, nil
	}
	return doubleQuote(s), nil
}

// plainSafe is deliberately narrow: a letter, '_' or '/' first (no numbers,
// timestamps, indicators), a small character set, no ": " or " #", and none
// of YAML 1.1's boolean or null words (cloud-init reads YAML 1.1).
func plainSafe(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' || s[len(s)-1] == ':' {
		return false
	}
	c := s[0]
	if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '/') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte(" _./+@=,()-", c) >= 0:
		case c == ':':
			if i+1 < len(s) && s[i+1] == ' ' {
				return false
			}
		default:
			return false
		}
	}
	switch strings.ToLower(s) {
	case "y", "n", "yes", "no", "on", "off", "true", "false", "null":
		return false
	}
	return true
}

// literalSafe reports whether s can be a literal block scalar that reads back
// exactly: several lines of printable text, no carriage return or other
// control character, no Unicode line separator (YAML 1.1 breaks lines on
// them), no line of blanks only, and a first content line that does not
// start with a space (that would need an explicit indentation indicator).
func literalSafe(s string) bool {
	if !strings.Contains(s, "\n") || strings.TrimSpace(s) == "" || !utf8.ValidString(s) {
		return false
	}
	// goccy/go-yaml drops blanks ending a strip-chomped (|-) block.
	if strings.HasSuffix(s, " ") || strings.HasSuffix(s, "\t") {
		return false
	}
	first := true
	for _, line := range strings.Split(s, "\n") {
		if line == "" {
			continue
		}
		if first && line[0] == ' ' {
			return false
		}
		first = false
		// Parsers disagree on lines of blanks only (goccy/go-yaml drops
		// them at the end of a block, PyYAML keeps them): quote instead.
		if strings.Trim(line, " \t") == "" {
			return false
		}
	}
	for _, r := range s {
		if r != '\n' && r != '\t' && !printable(r) {
			return false
		}
	}
	return true
}

// printable is YAML's printable set minus tab and line breaks, and minus the
// byte order mark and the Unicode line and paragraph separators.
func printable(r rune) bool {
	switch {
	case r >= 0x20 && r <= 0x7e:
		return true
	case r == 0x85, r == 0x2028, r == 0x2029, r == 0xfeff:
		return false
	case r >= 0xa0 && r <= 0xd7ff, r >= 0xe000 && r <= 0xfffd, r >= 0x10000 && r <= 0x10ffff:
		return true
	}
	return false
}

func doubleQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if printable(r) {
				b.WriteRune(r)
			} else if r <= 0xff {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// checkRoundTrip decodes data and compares it with the tree it was written
// from, so that a writer bug shows up as an error here, never in a guest.
func checkRoundTrip(data []byte, doc mapping) error {
	var got any
	if err := yaml.Unmarshal(data, &got); err != nil {
		return fmt.Errorf("decoding rendered yaml: %w", err)
	}
	if want := plainTree(doc); !reflect.DeepEqual(got, want) {
		return fmt.Errorf("rendered yaml does not read back as written:\n%s", data)
	}
	return nil
}

// plainTree converts a node to what a YAML decoder returns for it.
func plainTree(n node) any {
	switch n := n.(type) {
	case mapping:
		m := make(map[string]any, len(n))
		for _, f := range n {
			m[f.key] = plainTree(f.value)
		}
		return m
	case seq:
		s := make([]any, len(n))
		for i, v := range n {
			s[i] = plainTree(v)
		}
		return s
	case int:
		if n < 0 {
			return int64(n)
		}
		return uint64(n)
	default:
		return n
	}
}
