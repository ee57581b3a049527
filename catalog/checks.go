package catalog

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Who a check runs as.
const (
	CheckAsUser = "user" // the template's user (the default)
	CheckAsRoot = "root"
)

// Check is a declared test of a provisioned guest: Run is a shell script
// run in the guest (as the template's user, or root), whose exit code and
// output must be as expected. Checks run after the engine's own specs, each
// reported by its name. With Eventually, the script is run again until the
// expectations hold, for at most that long.
type Check struct {
	// Name says what the check proves; unique within the template.
	Name string `yaml:"name" json:"name" jsonschema:"required"`
	// When restricts the check to some distros, families or arches.
	When *When `yaml:"when,omitempty" json:"when,omitempty"`
	// Run is the script, with the template's env and params like probes.
	Run string `yaml:"run" json:"run" jsonschema:"required"`
	// As is user (default: the template's user) or root.
	As string `yaml:"as,omitempty" json:"as,omitempty" jsonschema:"enum=user,enum=root"`
	// ExitCode is the exit code expected; default 0.
	ExitCode *int `yaml:"exitCode,omitempty" json:"exitCode,omitempty" jsonschema:"minimum=0,maximum=255"`
	// Stdout and Stderr, when set, are expectations on the output.
	Stdout *Expect `yaml:"stdout,omitempty" json:"stdout,omitempty"`
	Stderr *Expect `yaml:"stderr,omitempty" json:"stderr,omitempty"`
	// Eventually, when set, retries the check until it holds, for at most
	// this named interval or duration (either scaled by accelerator).
	Eventually string `yaml:"eventually,omitempty" json:"eventually,omitempty"`
}

// Expect is an expectation on a check's stdout or stderr: exactly one of
// Equals (the whole output, trailing newlines left out of both), Contains
// (a substring) or Regex (RE2 syntax, found anywhere in the output).
type Expect struct {
	Equals   *string `yaml:"equals,omitempty" json:"equals,omitempty"`
	Contains string  `yaml:"contains,omitempty" json:"contains,omitempty"`
	Regex    string  `yaml:"regex,omitempty" json:"regex,omitempty"`
}

// String describes the expectation: `contains "Hello"`.
func (e *Expect) String() string {
	switch {
	case e == nil:
		return "anything"
	case e.Equals != nil:
		return fmt.Sprintf("equals %q", *e.Equals)
	case e.Contains != "":
		return fmt.Sprintf("contains %q", e.Contains)
	case e.Regex != "":
		return fmt.Sprintf("matches /%s/", e.Regex)
	}
	return "anything"
}

// Match reports whether out meets the expectation (a nil Expect accepts
// anything); the error says what was expected.
func (e *Expect) Match(out string) error {
	if e == nil {
		return nil
	}
	ok := true
	switch {
	case e.Equals != nil:
		ok = strings.TrimRight(out, "\r\n") == strings.TrimRight(*e.Equals, "\r\n")
	case e.Contains != "":
		ok = strings.Contains(out, e.Contains)
	case e.Regex != "":
		re, err := regexp.Compile(e.Regex)
		if err != nil {
			return fmt.Errorf("invalid regular expression: %w", err)
		}
		ok = re.MatchString(out)
	}
	if !ok {
		return fmt.Errorf("expected output that %s", e)
	}
	return nil
}

// ExpectedExitCode is ExitCode, or 0 when unset.
func (c Check) ExpectedExitCode() int {
	if c.ExitCode == nil {
		return 0
	}
	return *c.ExitCode
}

// ChecksFor returns the checks that apply to the template's distro and to
// arch, in order (bases' checks first).
func (t *Template) ChecksFor(arch string) []Check {
	var out []Check
	for _, c := range t.Checks {
		if c.When.matchesDistro(t.Distro) && c.When.matchesArch(arch) {
			out = append(out, c)
		}
	}
	return out
}

func cloneCheck(c Check) Check {
	c.When = cloneWhen(c.When)
	if c.ExitCode != nil {
		n := *c.ExitCode
		c.ExitCode = &n
	}
	c.Stdout, c.Stderr = cloneExpect(c.Stdout), cloneExpect(c.Stderr)
	return c
}

func cloneExpect(e *Expect) *Expect {
	if e == nil {
		return nil
	}
	c := *e
	if e.Equals != nil {
		s := *e.Equals
		c.Equals = &s
	}
	return &c
}

// interval checks a value naming a wait: a positive Go duration, or the
// name of an interval of the framework config (probe, docker/wait-engine).
// Whether the name is defined is known only to the framework's intervals,
// which a user may extend; the framework refuses an unknown one before it
// runs anything.
func (c *checker) interval(field, v string) {
	if v == "" {
		return
	}
	if d, err := time.ParseDuration(v); err == nil {
		if d <= 0 {
			c.errf(field, "must be positive, not %s", v)
		}
	} else if !intervalRef.MatchString(v) {
		c.errf(field, "must be a duration (90s) or a named interval (probe, docker/wait-engine), not %q", v)
	}
}

// checks checks the `checks:` of one document.
func (c *checker) checks(checks []Check) {
	for i, ck := range checks {
		f := indexPath("checks", i)
		switch {
		case strings.TrimSpace(ck.Name) == "":
			c.errf(f+".name", "must be set")
		default:
			if j := slices.IndexFunc(checks[:i], func(o Check) bool { return sameCheck(o, ck) }); j >= 0 {
				c.errf(f+".name", "%q is already the name of checks[%d]", ck.Name, j)
			}
		}
		if strings.TrimSpace(ck.Run) == "" {
			c.errf(f+".run", "must be set")
		}
		c.enum(f+".as", ck.As, []string{CheckAsUser, CheckAsRoot})
		if ck.ExitCode != nil && (*ck.ExitCode < 0 || *ck.ExitCode > 255) {
			c.errf(f+".exitCode", "must be an exit code from 0 to 255, not %d", *ck.ExitCode)
		}
		c.expect(f+".stdout", ck.Stdout)
		c.expect(f+".stderr", ck.Stderr)
		c.interval(f+".eventually", ck.Eventually)
		c.when(f+".when", ck.When)
	}
}

func (c *checker) expect(f string, e *Expect) {
	if e == nil {
		return
	}
	var set []string
	if e.Equals != nil {
		set = append(set, "equals")
	}
	if e.Contains != "" {
		set = append(set, "contains")
	}
	if e.Regex != "" {
		set = append(set, "regex")
	}
	switch {
	case len(set) == 0:
		c.errf(f, "must set one of equals, contains or regex")
	case len(set) > 1:
		c.errf(f, "must set only one of equals, contains or regex, not %s", strings.Join(set, " and "))
	}
	if e.Regex != "" {
		if _, err := regexp.Compile(e.Regex); err != nil {
			c.errf(f+".regex", "must be a regular expression (RE2 syntax): %v", err)
		}
	}
}

// sameCheck: two checks of one name collide unless their `when` filters
// cannot both match (a check written once per family, say).
func sameCheck(a, b Check) bool {
	return a.Name == b.Name && !a.When.excludes(b.When)
}

// excludes reports whether no guest can match both filters: on some
// dimension both list values, and no value in common.
func (w *When) excludes(o *When) bool {
	if w == nil || o == nil {
		return false
	}
	disjoint := func(a, b []string) bool {
		return len(a) > 0 && len(b) > 0 && !slices.ContainsFunc(a, func(x string) bool { return slices.Contains(b, x) })
	}
	return disjoint(w.Families, o.Families) || disjoint(w.Distros, o.Distros) || disjoint(w.Arches, o.Arches)
}

// composedChecks reports checks of different documents of one composition
// with the same name, on the later one (a check's name is unique within
// the template it is composed into).
func composedChecks(comp *composition) Problems {
	var ps Problems
	for i, ck := range comp.t.Checks {
		j := slices.IndexFunc(comp.t.Checks[:i], func(o Check) bool { return sameCheck(o, ck) })
		if j < 0 {
			continue
		}
		d, o := comp.checkFrom[i], comp.checkFrom[j]
		if d == o {
			continue // reported by the document's own checks
		}
		field := indexPath("checks", comp.checkIndex[i])
		ps = append(ps, Problem{Pos: d.locate(field + ".name"), Field: field + ".name",
			Message: fmt.Sprintf("%q is already the name of a check of %s (%s)", ck.Name, o.name, o.locate(indexPath("checks", comp.checkIndex[j])+".name"))})
	}
	return ps
}
