package catalog

import (
	"fmt"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Upper bounds checked by Validate: far above any real guest, far below
// what would make QEMU or the host fail in confusing ways.
const (
	MaxCPUs   = 512      // QEMU's q35 machine type takes up to 288 (x86) or 512 (virt) vCPUs
	MaxMemory = 1 << 40  // 1TiB
	MaxDisk   = 16 << 40 // 16TiB: qcow2 grows lazily, but a typo should not pass
	// MaxSeedBytes bounds the cloud-init seed a template renders to: its
	// scripts, data files and environment (repeated in every boot step).
	// Validate refuses a template over it, and cloudinit.Render refuses
	// the seed.
	MaxSeedBytes = 8 << 20
)

// bounds checks what checkDocument did not: upper bounds, cross-field rules,
// control characters, reserved names and paths (issue 10).
func (c *checker) bounds(t *Template) {
	if t.CPUs != nil && *t.CPUs > MaxCPUs {
		c.errf("cpus", "must be at most %d, not %d", MaxCPUs, *t.CPUs)
	}
	c.maxSize("memory", t.Memory, MaxMemory, "1TiB")
	c.maxSize("disk", t.Disk, MaxDisk, "16TiB")
	c.docName("name", t.Name)
	for i, b := range t.Base {
		c.docName(indexPath("base", i), b)
	}
	c.text("description", t.Description, true)
	for i, im := range t.Images {
		f := indexPath("images", i)
		if im.Arch == ArchAarch64 && im.Firmware == FirmwareBIOS {
			c.errf(f+".firmware", "must be uefi (or unset) on aarch64, which has no BIOS")
		}
		c.text(f+".noDigest", im.NoDigest, false)
	}
	if e := t.Engine; e != nil {
		c.text("engine.version", e.Version, false)
		c.script("engine.versionCommand", e.VersionCommand)
		for i, r := range e.Requires {
			c.text(indexPath("engine.requires", i)+".reason", r.Reason, false)
		}
		for i, u := range e.Unpinned {
			f := indexPath("engine.unpinned", i)
			c.text(f+".what", u.What, false)
			c.text(f+".reason", u.Reason, false)
		}
	}
	if u := t.User; u != nil && u.Shell != "" && strings.ContainsFunc(u.Shell, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) {
		c.errf("user.shell", "must be a path without spaces or control characters, not %s", strconv.Quote(u.Shell))
	}
	for _, k := range slices.Sorted(maps.Keys(t.Env)) {
		f := childPath("env", k)
		if why, ok := ReservedEnv(k); ok && !strings.HasPrefix(k, "PARAM_") && ValidEnvName(k) {
			c.errf(f, "%s is reserved: %s", k, why)
		}
		c.value(f, t.Env[k])
	}
	for _, k := range slices.Sorted(maps.Keys(t.Params)) {
		c.value(childPath("params", k), t.Params[k])
	}
	for i, s := range t.Provision {
		f := indexPath("provision", i)
		c.text(f+".description", s.Description, false)
		if s.Mode == ModeSystem || s.Mode == ModeUser || s.Mode == ModeBoot {
			c.script(f+".script", s.Script)
		}
		if s.Path != "" {
			if c.path(f+".path", s.Path) && s.Mode == ModeData && ReservedGuestPath(s.Path) {
				c.errf(f+".path", "%s is written by guestcatalog (under %s, %s or %s): a template may not write it", strconv.Quote(s.Path), GuestStateDir, GuestConfigDir, GuestLogPath)
			}
		}
	}
	for i, p := range t.Probes {
		f := indexPath("probes", i)
		c.text(f+".description", p.Description, false)
		c.text(f+".hint", p.Hint, true)
		c.script(f+".script", p.Script)
	}
	for i, ck := range t.Checks {
		f := indexPath("checks", i)
		c.text(f+".name", ck.Name, false)
		c.script(f+".run", ck.Run)
	}
	for i, m := range t.Mounts {
		f := indexPath("mounts", i)
		c.path(f+".location", m.Location)
		c.path(f+".mountPoint", m.MountPoint)
	}
}

func (c *checker) maxSize(f, s string, maximum int64, maxText string) {
	if s == "" {
		return
	}
	if n, err := ParseSize(s); err == nil && n > maximum {
		c.errf(f, "must be at most %s, not %s", maxText, s)
	}
}

// docName refuses a document name (or a base) that is not a clean relative
// path: `engines/../../../etc/passwd` names no document, and a name is
// shown and used as a path.
func (c *checker) docName(f, name string) {
	if name == "" {
		return
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			c.errf(f, "must be a clean relative name (no empty, . or .. segments, no leading /), not %s", strconv.Quote(name))
			return
		}
	}
}

// controlRune returns the first control (or other invisible) rune of s and
// its line, skipping tabs and, if newlines, newlines; utf8.RuneError for
// invalid UTF-8.
func controlRune(s string, newlines bool) (rune, int, bool) {
	line := 1
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			return r, line, true
		case r == '\n' && newlines:
			line++
		case r == '\t':
		case !unicode.IsPrint(r) && !unicode.IsSpace(r), r == '\n', r == '\r', r == '\v', r == '\f', r == 0x85, r == 0x2028, r == 0x2029:
			return r, line, true
		}
		i += n
	}
	return 0, 0, false
}

func runeName(r rune) string {
	switch r {
	case 0:
		return "a NUL byte"
	case '\r':
		return `a carriage return (\r)`
	case '\n':
		return `a newline (\n)`
	case utf8.RuneError:
		return "invalid UTF-8"
	case '\t':
		return `a tab (\t)`
	}
	q := strconv.QuoteRune(r)
	return "the control character " + q[1:len(q)-1]
}

// text checks a free-text field printed to terminals and reports: no
// control characters (tabs allowed; newlines only if multiline).
func (c *checker) text(f, s string, multiline bool) {
	if r, line, ok := controlRune(s, multiline); ok {
		where := ""
		if multiline {
			where = fmt.Sprintf(" (line %d)", line)
		}
		c.errf(f, "must not contain %s%s", runeName(r), where)
	}
}

// script checks a shell script: UTF-8 text, lines ending in \n only. A CR
// would reach the guest's shell (a `#!/bin/sh\r` line names no
// interpreter; `cmd\r` runs "cmd\r"), a NUL cannot be written by
// cloud-init, and other control characters are never meant.
func (c *checker) script(f, s string) {
	if r, line, ok := controlRune(s, true); ok {
		msg := fmt.Sprintf("must not contain %s (line %d)", runeName(r), line)
		if r == '\r' {
			msg += ": scripts run on Linux; save the file with LF line endings"
		}
		c.errf(f, "%s", msg)
	}
}

// value checks an env or param value: data quoted for the shell, any text,
// but no NUL byte (no shell variable can hold one) and valid UTF-8.
func (c *checker) value(f, s string) {
	switch {
	case strings.ContainsRune(s, 0):
		c.errf(f, "must not contain a NUL byte (no environment variable can hold one)")
	case !utf8.ValidString(s):
		c.errf(f, "must be valid UTF-8")
	}
}

// path checks a path for control characters (a newline in a path breaks
// every file list it lands in); it reports whether the path is clean of
// them.
func (c *checker) path(f, p string) bool {
	r, _, ok := controlRune(p, false)
	if i := strings.IndexByte(p, '\t'); i >= 0 && (!ok || i < strings.IndexRune(p, r)) {
		r, ok = '\t', true
	}
	if ok {
		c.errf(f, "must not contain %s, not %s", runeName(r), strconv.Quote(p))
		return false
	}
	return true
}

// RedactURL removes the user information from a URL (parsable or not) for
// messages: a password must never be printed, logged or stored. The CLI
// uses it where it prints URLs it did not validate (cache ls of old
// entries).
func RedactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		u.User = nil
		return strings.Replace(u.String(), "://", "://<redacted>@", 1)
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
		return scheme + "://<redacted>@" + rest[at+1:]
	}
	return s
}

// checkURL checks an http(s) URL: a host, a port from 1 to 65535 if any, no
// user information (credentials would be printed by pull and cache ls and
// stored in the cache's metadata); messages never show the credentials.
func (c *checker) checkURL(f, s string) {
	shown := strconv.Quote(RedactURL(s))
	u, err := url.Parse(s)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https"):
		c.errf(f, "must be an http(s) URL, not %s", shown)
	case u.User != nil:
		c.errf(f, "must not hold credentials (user:password@), not %s: the URL is printed and stored", shown)
	case u.Hostname() == "":
		c.errf(f, "must name a host, not %s", shown)
	case u.Port() != "":
		if n, err := strconv.Atoi(u.Port()); err != nil || n < 1 || n > 65535 {
			c.errf(f, "must have a port from 1 to 65535, not %s", shown)
		}
	}
}

// seedBytes estimates, from above, the bytes of the cloud-init seed t
// renders to: every script and data file (base64 when not UTF-8, escaped
// when it holds control characters), with a YAML indentation per line, and
// the environment file once plus once per boot step. The seed's fixed part
// (runner, users, keys) is a few KiB more.
func seedBytes(t *Template) int64 {
	block := func(s string) int64 {
		if !utf8.ValidString(s) {
			return int64(len(s))*4/3 + 4
		}
		n := int64(len(s)) + 8*int64(strings.Count(s, "\n")+1)
		for _, r := range s {
			if r != '\n' && r != '\t' && !unicode.IsPrint(r) {
				n += 9 // escaped as \uXXXX in a double-quoted scalar
			}
		}
		return n + 64
	}
	var env int64
	for k, v := range t.Env {
		env += int64(len(k)) + 4*int64(len(v)) + 16
	}
	for k, v := range t.Params {
		env += int64(len("PARAM_")+len(k)) + 4*int64(len(v)) + 16
	}
	total := block("") + env
	for _, s := range t.Provision {
		switch s.Mode {
		case ModeData:
			total += block(s.Content) + int64(len(s.Path)) + 64
		case ModeBoot:
			total += block(s.Script) + env + 256
		default:
			total += block(s.Script) + int64(len(s.Description)) + 128
		}
		for _, p := range s.Packages {
			total += int64(len(p)) + 8
		}
	}
	return total
}

// SeedBytes is the estimate (from above) of the size of t's cloud-init seed
// that Validate compares with MaxSeedBytes; cloudinit.Render checks it before
// rendering, so that a template that validates renders.
func SeedBytes(t *Template) int64 { return seedBytes(t) }

// seedSize refuses a composed template whose seed would be too large.
func (c *checker) seedSize(t *Template) {
	if n := seedBytes(t); n > MaxSeedBytes {
		c.errf("provision", "the cloud-init seed would be about %s, over the limit of %s (scripts, data files, and the env repeated in each boot step)", formatBytes(n), formatBytes(MaxSeedBytes))
	}
}

// Every problem at once: a document with a wrongly typed field cannot be
// decoded, yet its other fields must still be checked (a range error after
// a type error is reported too). So the fields that failed the shape check
// are cut out of the tree, the rest is decoded and checked, and problems
// about the cut fields (now missing) are left out.

func (sc *shapeChecker) markBad(n ast.Node) {
	if sc.bad == nil {
		sc.bad = map[ast.Node]bool{}
	}
	sc.bad[n] = true
}

// checkRest returns the problems checkDocument finds in body once the
// fields that failed the shape check are cut out of it. body is modified.
func (sc *shapeChecker) checkRest(body ast.Node) Problems {
	if sc.prune(body) {
		return nil
	}
	var t Template
	if err := yaml.NodeToValue(body, &t, yaml.Strict()); err != nil {
		return nil // what is left still does not decode: the shape problems say why
	}
	errs, _ := checkDocument(&t, sc.ix.locate)
	var out Problems
	for _, p := range errs {
		if !sc.aboutBadField(p.Field) {
			out = append(out, p)
		}
	}
	return out
}

// prune cuts the failed nodes out of n and reports whether n itself must go
// (it failed, or it is a list holding an item that failed: removing the
// item would shift the indexes of the next ones in messages).
func (sc *shapeChecker) prune(n ast.Node) bool {
	if n == nil {
		return false
	}
	if sc.bad[n] {
		return true
	}
	switch v := unwrap(n).(type) {
	case nil:
		return false
	case *ast.MappingNode:
		if sc.bad[v] {
			return true
		}
		v.Values = slices.DeleteFunc(v.Values, func(mv *ast.MappingValueNode) bool {
			return sc.bad[mv.Key] || sc.prune(mv.Value)
		})
	case *ast.MappingValueNode:
		return sc.bad[v] || sc.bad[v.Key] || sc.prune(v.Value)
	case *ast.SequenceNode:
		if sc.bad[v] {
			return true
		}
		for _, e := range v.Values {
			if sc.prune(e) {
				return true
			}
		}
	default:
		return sc.bad[v]
	}
	return false
}

// aboutBadField reports whether a field path is, is inside, or holds one
// that failed the shape check (`images[0]: must set location` when
// `images[0].locaton` was cut out).
func (sc *shapeChecker) aboutBadField(field string) bool {
	under := func(a, b string) bool {
		return strings.HasPrefix(a, b+".") || strings.HasPrefix(a, b+"[")
	}
	for _, p := range sc.problems {
		b := p.Field
		if field == b || under(field, b) || (field != "" && under(b, field)) {
			return true
		}
	}
	return false
}
