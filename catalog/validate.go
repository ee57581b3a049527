package catalog

import (
	"fmt"
	"maps"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/guestcatalog/guestcatalog/framework/exec"
)

// The enums and patterns of the schema are read from the struct tags of
// types.go, so that Validate and the JSON Schema cannot disagree.
var (
	tierNames     = tagEnum[Template]("Tier")
	distroNames   = tagEnum[Distro]("Name")
	familyNames   = tagEnum[Distro]("Family")
	initNames     = tagEnum[Distro]("Init")
	requireNames  = tagEnum[Requirement]("What")
	archNames     = tagEnum[Image]("Arch")
	firmwareNames = tagEnum[Image]("Firmware")
	modeNames     = tagEnum[Step]("Mode")
	protoNames    = tagEnum[PortForward]("Proto")

	namePattern   = tagPattern[Template]("Name")
	enginePattern = tagPattern[Engine]("Name")
	digestPattern = tagPattern[Image]("Digest")
	userPattern   = tagPattern[User]("Name")
	permPattern   = tagPattern[Step]("Permissions")
	sizePattern   = tagPattern[Template]("Memory")
)

// distroFamily is the family of each distro.
var distroFamily = map[string]string{
	"debian":    FamilyDebian,
	"ubuntu":    FamilyDebian,
	"fedora":    FamilyRHEL,
	"rocky":     FamilyRHEL,
	"almalinux": FamilyRHEL,
	"alpine":    FamilyAlpine,
	"opensuse":  FamilySUSE,
	"archlinux": FamilyArch,
}

var (
	ownerSpec   = regexp.MustCompile(`^[a-z_][a-z0-9_-]*(:[a-z_][a-z0-9_-]*)?$`)
	intervalRef = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*(/[a-z0-9][a-z0-9-]*)?$`)
	releaseName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*$`)
	suiteName   = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
)

// Size limits checked by Validate.
const (
	MinMemory = 256 << 20 // 256MiB
	MinDisk   = 1 << 30   // 1GiB
)

func tagKeyword[T any](field, key string) []string {
	f, ok := reflect.TypeFor[T]().FieldByName(field)
	if !ok {
		panic("catalog: no field " + field)
	}
	var out []string
	for _, kv := range strings.Split(f.Tag.Get("jsonschema"), ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			out = append(out, v)
		}
	}
	return out
}

func tagEnum[T any](field string) []string { return tagKeyword[T](field, "enum") }

func tagPattern[T any](field string) *regexp.Regexp {
	p := tagKeyword[T](field, "pattern")
	if len(p) != 1 {
		panic("catalog: no pattern on " + field)
	}
	return regexp.MustCompile(p[0])
}

// checker collects the problems of one document (or template), each
// placed by loc.
type checker struct {
	loc   func(field string) Position
	errs  Problems
	warns Problems
}

func (c *checker) errf(field, format string, args ...any) {
	c.errs = append(c.errs, Problem{Pos: c.loc(field), Field: field, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) warnf(field, format string, args ...any) {
	c.warns = append(c.warns, Problem{Pos: c.loc(field), Field: field, Message: fmt.Sprintf(format, args...)})
}

// enum checks an optional value against its allowed values.
func (c *checker) enum(field, v string, allowed []string) {
	if v != "" && !slices.Contains(allowed, v) {
		c.errf(field, "must be one of %s, not %q", strings.Join(allowed, ", "), v)
	}
}

// required checks that a value is set, then that it is allowed.
func (c *checker) required(field, v string, allowed []string) {
	if v == "" {
		c.errf(field, "must be set")
		return
	}
	c.enum(field, v, allowed)
}

// checkDocument checks one document's own fields: what can be wrong in it
// whatever it is composed with. It returns errors and warnings.
func checkDocument(t *Template, loc func(string) Position) (Problems, Problems) {
	c := &checker{loc: loc}
	fragment := t.Kind == KindFragment

	switch {
	case t.Name == "":
		c.errf("name", "must be set")
	case !namePattern.MatchString(t.Name):
		c.errf("name", "must match %s, not %q", namePattern, t.Name)
	}
	if fragment && len(t.Aliases) > 0 {
		c.errf("aliases", "only a Template has aliases")
	}
	for i, a := range t.Aliases {
		f := indexPath("aliases", i)
		switch {
		case !namePattern.MatchString(a) || strings.Contains(a, "/"):
			c.errf(f, "must match %s without '/', not %q", namePattern, a)
		case a == t.Name:
			c.errf(f, "is the template's own name")
		case slices.Index(t.Aliases, a) < i:
			c.errf(f, "%q is listed twice", a)
		}
	}
	if fragment && t.Tier != "" {
		c.errf("tier", "only a Template has a tier (tiers are not inherited)")
	}
	c.enum("tier", t.Tier, tierNames)
	for i, b := range t.Base {
		f := indexPath("base", i)
		switch {
		case b == "":
			c.errf(f, "must name a fragment or template")
		case b == t.Name:
			c.errf(f, "a document cannot be its own base")
		case slices.Index(t.Base, b) < i:
			c.errf(f, "%q is listed twice", b)
		}
	}

	if d := t.Distro; d != nil {
		c.required("distro.name", d.Name, distroNames)
		c.required("distro.family", d.Family, familyNames)
		if fam, ok := distroFamily[d.Name]; ok && d.Family != "" && d.Family != fam {
			c.errf("distro.family", "%s is in family %s, not %s", d.Name, fam, d.Family)
		}
		if d.Release != "" && !releaseName.MatchString(d.Release) {
			c.errf("distro.release", "must be a version or codename (lowercase letters, digits, dots, dashes), not %q", d.Release)
		}
		c.enum("distro.init", d.Init, initNames)
	}
	if e := t.Engine; e != nil {
		switch {
		case e.Name == "":
			c.errf("engine.name", "must be set")
		case !enginePattern.MatchString(e.Name):
			c.errf("engine.name", "must be a lowercase name (%s), not %q", enginePattern, e.Name)
		}
		for i, r := range e.Requires {
			f := indexPath("engine.requires", i)
			c.required(f+".what", r.What, requireNames)
			if r.Reason == "" {
				c.errf(f+".reason", "must be set (it is shown as SKIPPED: <reason>)")
			}
			switch {
			case r.What == "url" && r.URL == "":
				c.errf(f+".url", "must be set when what is url")
			case r.What == "url":
				c.httpURL(f+".url", r.URL)
			case r.URL != "":
				c.errf(f+".url", "only a requirement of what: url has a url")
			}
		}
	}

	for i, im := range t.Images {
		c.image(indexPath("images", i), im)
	}

	if t.CPUs != nil && *t.CPUs < 1 {
		c.errf("cpus", "must be at least 1, not %d", *t.CPUs)
	}
	c.size("memory", t.Memory, MinMemory, "256MiB")
	c.size("disk", t.Disk, MinDisk, "1GiB")

	if u := t.User; u != nil {
		switch {
		case u.Name == "":
		case !userPattern.MatchString(u.Name) || len(u.Name) > 32:
			c.errf("user.name", "must be a user name (%s, at most 32 characters), not %q", userPattern, u.Name)
		case u.Name == "root":
			c.errf("user.name", "must not be root (the user gets sudo)")
		}
		if u.Shell != "" && !path.IsAbs(u.Shell) {
			c.errf("user.shell", "must be an absolute path, not %q", u.Shell)
		}
		for i, g := range u.Groups {
			if !userPattern.MatchString(g) {
				c.errf(indexPath("user.groups", i), "must be a group name (%s), not %q", userPattern, g)
			}
		}
	}

	for _, k := range slices.Sorted(maps.Keys(t.Env)) {
		f := childPath("env", k)
		switch {
		case !ValidEnvName(k):
			c.errf(f, "must be an environment variable name (%s)", exec.EnvNamePattern)
		case strings.HasPrefix(k, "PARAM_"):
			c.errf(f, "the PARAM_ prefix is reserved for params")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(t.Params)) {
		if !ValidEnvName(k) {
			c.errf(childPath("params", k), "must be a param name (%s): scripts read it as PARAM_<name>", exec.EnvNamePattern)
		}
	}

	for i, s := range t.Provision {
		c.step(indexPath("provision", i), s)
	}
	for i, p := range t.Probes {
		f := indexPath("probes", i)
		if p.Description == "" {
			c.errf(f+".description", "must be set")
		}
		if strings.TrimSpace(p.Script) == "" {
			c.errf(f+".script", "must be set")
		}
		c.interval(f+".timeout", p.Timeout)
		c.interval(f+".eventually", p.Eventually)
		c.when(f+".when", p.When)
	}
	c.checks(t.Checks)

	type portKey struct {
		port  int
		proto string
	}
	guests, hosts := map[portKey]int{}, map[portKey]int{}
	for i, pf := range t.PortForwards {
		f := indexPath("portForwards", i)
		proto := pf.Proto
		if proto == "" {
			proto = "tcp"
		}
		if pf.GuestPort < 1 || pf.GuestPort > 65535 {
			c.errf(f+".guestPort", "must be a port from 1 to 65535, not %d", pf.GuestPort)
		} else if j, dup := guests[portKey{pf.GuestPort, proto}]; dup {
			c.errf(f+".guestPort", "%s port %d is already forwarded by portForwards[%d]", proto, pf.GuestPort, j)
		} else {
			guests[portKey{pf.GuestPort, proto}] = i
		}
		if pf.HostPort < 0 || pf.HostPort > 65535 {
			c.errf(f+".hostPort", "must be a port from 1 to 65535, or 0 for any free port, not %d", pf.HostPort)
		} else if pf.HostPort != 0 {
			if j, dup := hosts[portKey{pf.HostPort, proto}]; dup {
				c.errf(f+".hostPort", "%s port %d is already used by portForwards[%d]", proto, pf.HostPort, j)
			} else {
				hosts[portKey{pf.HostPort, proto}] = i
			}
		}
		c.enum(f+".proto", pf.Proto, protoNames)
	}
	for i, m := range t.Mounts {
		f := indexPath("mounts", i)
		if m.Location == "" {
			c.errf(f+".location", "must be set")
		} else if !path.IsAbs(m.Location) && !strings.HasPrefix(m.Location, "~") {
			c.errf(f+".location", "must be an absolute path or start with ~, not %q", m.Location)
		}
		if m.MountPoint != "" && !path.IsAbs(m.MountPoint) {
			c.errf(f+".mountPoint", "must be an absolute path, not %q", m.MountPoint)
		}
	}
	c.artifacts(t)
	c.unpinned(t)
	c.bounds(t)
	c.sandbox(t)
	return c.errs, c.warns
}

func (c *checker) image(f string, im Image) {
	c.required(f+".arch", im.Arch, archNames)
	c.enum(f+".firmware", im.Firmware, firmwareNames)
	switch {
	case im.Location != "" && im.Build != nil:
		c.errf(f, "set either location or build, not both")
	case im.Location == "" && im.Build == nil:
		c.errf(f, "must set location (a URL) or build (a local recipe)")
	}
	if im.Location != "" {
		c.httpURL(f+".location", im.Location)
		switch {
		case im.Digest != "" && im.NoDigest != "":
			c.errf(f+".noDigest", "must not be set together with digest")
		case im.Digest == "" && strings.TrimSpace(im.NoDigest) == "":
			c.errf(f+".digest", "must be set (or noDigest must say why)")
		case im.Digest == "":
			c.warnf(f+".noDigest", "no digest, the download is not verified: %s", im.NoDigest)
		}
	} else {
		if im.Digest != "" {
			c.errf(f+".digest", "only an image with a location has a digest")
		}
		if im.NoDigest != "" {
			c.errf(f+".noDigest", "only an image with a location has noDigest")
		}
	}
	if im.Digest != "" && !digestPattern.MatchString(im.Digest) {
		c.errf(f+".digest", "must be sha256:<64 hex digits> or sha512:<128 hex digits>, not %q", im.Digest)
	}
	if b := im.Build; b != nil {
		if b.Suite == "" {
			c.errf(f+".build.suite", "must be set (a Debian suite: trixie, bookworm)")
		} else if !suiteName.MatchString(b.Suite) {
			c.errf(f+".build.suite", "must be a Debian suite name (trixie, bookworm), not %q", b.Suite)
		}
		if b.Mirror != "" {
			c.httpURL(f+".build.mirror", b.Mirror)
		}
		for i, comp := range b.Components {
			if !suiteName.MatchString(comp) {
				c.errf(indexPath(f+".build.components", i), "must be an archive component (main, contrib), not %q", comp)
			}
		}
		for i, p := range b.Packages {
			if !ValidDebianPackageName(p) {
				c.errf(indexPath(f+".build.packages", i), "must be a Debian package name (%s), not %q", DebianPackageNamePattern, p)
			}
		}
	}
}

func (c *checker) httpURL(f, s string) { c.checkURL(f, s) }

func (c *checker) size(f, s string, minimum int64, minText string) {
	if s == "" {
		return
	}
	n, err := ParseSize(s)
	switch {
	case err != nil:
		c.errf(f, "%v", err)
	case n < minimum:
		c.errf(f, "must be at least %s, not %s", minText, s)
	}
}

func (c *checker) packages(f string, pkgs []string) {
	if len(pkgs) == 0 {
		c.errf(f, "must list at least one package")
	}
	for i, p := range pkgs {
		if !ValidPackageName(p) {
			c.errf(indexPath(f, i), "must be a package name (no spaces or shell characters), not %q", p)
		}
	}
}

// stepFields are the fields a step may set besides mode, description and
// when, each with the modes that use it, in the order they are checked.
var stepFields = []struct {
	name  string
	modes []string
	what  string // the steps that have the field, for messages
}{
	{"script", []string{ModeSystem, ModeUser, ModeBoot}, "system, user and boot"},
	{"packages", []string{ModePackages}, "packages"},
	{"path", []string{ModeData}, "data"},
	{"content", []string{ModeData}, "data"},
	{"permissions", []string{ModeData}, "data"},
	{"owner", []string{ModeData}, "data"},
}

func (c *checker) step(f string, s Step) {
	c.required(f+".mode", s.Mode, modeNames)
	set := map[string]bool{
		"script": s.Script != "", "packages": len(s.Packages) > 0, "path": s.Path != "",
		"content": s.Content != "", "permissions": s.Permissions != "", "owner": s.Owner != "",
	}
	switch s.Mode {
	case ModeSystem, ModeUser, ModeBoot:
		if strings.TrimSpace(s.Script) == "" {
			c.errf(f+".script", "must be set for a %s step", s.Mode)
		}
	case ModeData:
		switch {
		case s.Path == "":
			c.errf(f+".path", "must be set for a data step")
		case !path.IsAbs(s.Path) || path.Clean(s.Path) != s.Path:
			c.errf(f+".path", "must be a clean absolute path, not %q", s.Path)
		}
		if s.Content == "" {
			c.errf(f+".content", "must be set for a data step")
		}
		if s.Permissions != "" && !permPattern.MatchString(s.Permissions) {
			c.errf(f+".permissions", "must be octal like \"0644\" (%s), not %q", permPattern, s.Permissions)
		}
		if s.Owner != "" && !ownerSpec.MatchString(s.Owner) {
			c.errf(f+".owner", "must be user or user:group, not %q", s.Owner)
		}
	case ModePackages:
		c.packages(f+".packages", s.Packages)
	default:
		c.when(f+".when", s.When)
		return // an unknown mode: which fields belong is unknown too
	}
	for _, sf := range stepFields {
		if set[sf.name] && !slices.Contains(sf.modes, s.Mode) {
			c.errf(f+"."+sf.name, "only %s steps have %s (this step is mode %s)", sf.what, sf.name, s.Mode)
		}
	}
	c.when(f+".when", s.When)
}

func (c *checker) when(f string, w *When) {
	if w == nil {
		return
	}
	for i, v := range w.Families {
		c.enum(indexPath(f+".families", i), v, familyNames)
	}
	for i, v := range w.Distros {
		c.enum(indexPath(f+".distros", i), v, distroNames)
	}
	for i, v := range w.Arches {
		c.enum(indexPath(f+".arches", i), v, archNames)
	}
}

// ExpectedName is the name a shipped template must have, from what it is:
// `<distro.name>-<distro.release>[-<engine.name>]` (the release left out
// when empty, for rolling distros). Deriving names keeps the catalog's
// naming from drifting from its content; aliases give the short names.
func ExpectedName(t *Template) string {
	var parts []string
	if t.Distro != nil {
		parts = append(parts, t.Distro.Name)
		if t.Distro.Release != "" {
			parts = append(parts, t.Distro.Release)
		}
	}
	if t.Engine != nil && t.Engine.Name != "" {
		parts = append(parts, t.Engine.Name)
	} else if t.Isolation == IsolationStrict {
		parts = append(parts, "sandbox") // debian-13-sandbox
	}
	return strings.Join(parts, "-")
}

// checkTemplate checks what needs the whole composed, defaulted template.
// engineSteps and engineProbes are those declared by the documents that
// set the engine. The name rule binds shipped templates only: a user's
// template may have any valid name.
func checkTemplate(t *Template, loc func(string) Position, engineSteps []Step, engineProbes []Probe, shipped bool) Problems {
	c := &checker{loc: loc}
	if t.Distro == nil || t.Distro.Name == "" || t.Distro.Family == "" {
		c.errf("distro", "must be set, with name and family (in the template or one of its bases)")
	} else if want := ExpectedName(t); shipped && t.Name != want {
		c.errf("name", "must be %q, from <distro.name>-<distro.release>[-<engine.name>] (not %q)", want, t.Name)
	}
	arches := map[string]bool{}
	for _, im := range t.Images {
		arches[im.Arch] = true
	}
	if !arches[ArchX8664] && !arches[ArchAarch64] {
		c.errf("images", "must list an image for %s or %s (in the template or one of its bases)", ArchX8664, ArchAarch64)
	}
	if t.Engine != nil && t.Distro != nil && t.Distro.Name != "" {
		c.engineCoverage(t, engineSteps, engineProbes)
	}
	c.seedSize(t)
	c.sandboxTemplate(t)
	return c.errs
}

// engineCoverage: an engine whose steps or probes are filtered by distro or
// family is written per distro, so at least one of its provisioning steps
// must apply to this template's distro (a step without a filter applies to
// all). A generic step alongside per-distro ones counts: an engine with a
// generic install script and a distro-specific extra is common, and cannot
// be told apart from a generic "enable the service" step.
func (c *checker) engineCoverage(t *Template, steps []Step, probes []Probe) {
	filtered, matched := false, false
	for _, s := range steps {
		filtered = filtered || s.When.filtersDistro()
		matched = matched || s.When.matchesDistro(t.Distro)
	}
	for _, p := range probes {
		filtered = filtered || p.When.filtersDistro()
	}
	if filtered && !matched {
		c.errf("engine", "engine %s has no provisioning for distro %s (family %s)", t.Engine.Name, t.Distro.Name, t.Distro.Family)
	}
}
