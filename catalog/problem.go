package catalog

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Position is a place in a template file. Line and Column start at 1; zero
// means unknown (a template built in Go, or a problem about the whole file).
type Position struct {
	File   string
	Line   int
	Column int
}

// String formats the position as `file:line:col`, leaving out what is unknown.
func (p Position) String() string {
	switch {
	case p.Line > 0 && p.Column > 0:
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
	case p.Line > 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	default:
		return p.File
	}
}

// Problem is one thing wrong (or, as a warning, worth knowing) in a template:
// where it is, which field, and what is wrong with it.
type Problem struct {
	Pos Position
	// Field is the path of the field in the document (`images[0].digest`);
	// empty for a problem with the whole document.
	Field   string
	Message string
}

// Error formats the problem as `file:line:col: field: message`.
func (p Problem) Error() string {
	var b strings.Builder
	if s := p.Pos.String(); s != "" {
		b.WriteString(s)
		b.WriteString(": ")
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is every problem found at once; it is the error Load and Resolve
// return (and Result.Errors), one problem per line. Use errors.As to get at the items.
type Problems []Problem

func (ps Problems) Error() string { return strings.Join(ps.Strings(), "\n") }

// Strings returns each problem formatted, in order.
func (ps Problems) Strings() []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Error()
	}
	return out
}

// errOrNil returns ps as an error, or nil when there is none: a nil Problems
// stored in an error interface would not compare equal to nil.
func (ps Problems) errOrNil() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// sortProblems orders problems by file, line, column, keeping the order of
// problems at the same place.
func sortProblems(ps Problems) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Column, b.Pos.Column),
		)
	})
}

// appendUnique appends the problems of add not already in ps (a fragment
// shared by two bases is reported once).
func appendUnique(ps Problems, add ...Problem) Problems {
	for _, p := range add {
		if !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	return ps
}

// Result is the outcome of checking one template (or a fragment no template
// uses, or a file that could not be loaded).
type Result struct {
	// Name of the template; the file path when the document failed to load
	// before its name was known.
	Name   string
	Kind   string
	Source string
	// Template is the resolved template, nil when Errors is not empty.
	Template *Template
	// Bases are the documents composed into it, in composition order
	// (bases before what uses them), the template itself left out.
	Bases []string
	// Errors make the template unusable; Warnings do not (an image without a
	// digest, for a stated reason).
	Errors   Problems
	Warnings Problems
}

// OK reports whether the template has no errors (it may have warnings).
func (r Result) OK() bool { return len(r.Errors) == 0 }
