package catalog

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Names, paths and values in messages come from template files, which are
// hostile input: a fragment named "x\r\x1b[2KPASS debian-13-docker" must
// not rewrite the line a terminal shows. Everything user-supplied that a
// message prints goes through Quote (a name, alone) or Sanitize (a whole
// line), and Problem.Error sanitizes what it formats.

// printable reports whether s is valid UTF-8 made only of printable runes
// (unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the
// ASCII space; no control, format, bidi-override or other invisible runes).
func printable(s string) bool {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || !unicode.IsPrint(r) {
			return false
		}
		i += n
	}
	return true
}

// Quote returns s as it is when every rune of it is printable, and
// Go-quoted (strconv.Quote: "a\r\x1b[2K") otherwise, so that a name in a
// message can never move the cursor, clear a line or hide text. The CLI
// uses it for every template name, path and value it prints.
func Quote(s string) string {
	if printable(s) {
		return s
	}
	return strconv.Quote(s)
}

// Sanitize escapes, inside s, each rune that is not printable, as Go would
// in a quoted string (\r, \x1b, \u202e), and each invalid byte as \xNN;
// printable text is left as it is. It is for whole lines that already
// quote what they should, as a last guard: newlines are escaped too, so a
// sanitized message is one line.
func Sanitize(s string) string {
	if printable(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsPrint(r):
			b.WriteString(s[i : i+n])
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}
