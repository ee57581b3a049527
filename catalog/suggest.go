package catalog

import (
	"cmp"
	"slices"
	"strings"
)

// suggest returns up to n candidates close to name: by edit distance, or
// containing it / contained in it (`debian-docker` → `debian-13-docker`),
// closest first.
func suggest(name string, candidates []string, n int) []string {
	type scored struct {
		s string
		d int
	}
	var found []scored
	lname := strings.ToLower(name)
	limit := max(2, len(name)/3)
	for _, c := range candidates {
		if c == name {
			continue
		}
		lc := strings.ToLower(c)
		d := levenshtein(lname, lc)
		if d <= limit || (len(lname) >= 3 && (strings.Contains(lc, lname) || strings.Contains(lname, lc)) && len(lc) >= 3) || sameParts(lname, lc) {
			found = append(found, scored{c, d})
		}
	}
	slices.SortFunc(found, func(a, b scored) int { return cmp.Or(cmp.Compare(a.d, b.d), cmp.Compare(a.s, b.s)) })
	out := make([]string, 0, n)
	for _, f := range found {
		if len(out) == n || (found[0].d <= 2 && f.d > found[0].d+1) {
			break // a near miss is the answer; farther ones only distract
		}
		out = append(out, f.s)
	}
	return out
}

// sameParts reports whether a and b have the same dash-separated parts in
// another order, or b's parts include all of a's (`docker-debian` →
// `debian-13-docker`).
func sameParts(a, b string) bool {
	pa, pb := strings.Split(a, "-"), strings.Split(b, "-")
	if len(pa) < 2 {
		return false
	}
	for _, p := range pa {
		if !slices.Contains(pb, p) {
			return false
		}
	}
	return true
}

// levenshtein is the edit distance between a and b, in bytes.
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// didYouMean formats suggestions as ` (did you mean a or b?)`, or "".
func didYouMean(names []string) string {
	s := make([]string, len(names))
	for i, n := range names {
		s[i] = Quote(n) // names come from template files
	}
	switch len(s) {
	case 0:
		return ""
	case 1:
		return " (did you mean " + s[0] + "?)"
	default:
		return " (did you mean " + strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1] + "?)"
	}
}
