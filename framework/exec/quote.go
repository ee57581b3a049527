package exec

import "strings"

// Quote quotes s for a POSIX shell so that the shell reads it back as one
// word with exactly the bytes of s. Words made only of characters that are
// never special to a shell are returned as they are; anything else is put in
// single quotes, each single quote inside written as close-quote,
// backslash-quote, reopen. The empty string becomes a pair of quotes:
//
//	Quote("it's") == `'it'\''s'`
//	Quote("")     == `''`
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	if isSafeWord(s) {
		return s
	}
	return forceQuote(s)
}

// Join quotes every argument with Quote and joins them with spaces: the
// result, given to `sh -c`, runs argv exactly. A first word containing '='
// is always quoted, so that the shell does not read it as an assignment.
func Join(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if i == 0 && strings.Contains(a, "=") {
			q[i] = forceQuote(a)
			continue
		}
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}

func forceQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func isSafeWord(s string) bool {
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("_-+=@%:,./", r):
		default:
			return false
		}
	}
	return true
}
