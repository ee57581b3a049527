package catalog

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Unpinned downloads (issue 11, "nothing unverified reaches a guest"): what
// a template's guest downloads that the catalog cannot pin — no digest is
// published, or it cannot be learned without internet access — declared
// under engine.unpinned so that it is never silent. The framework and the
// CLI skip such a template unless the caller allows unpinned downloads
// (--allow-unpinned), and report.json lists them when allowed.

// Bounds of engine.unpinned.
const (
	MaxUnpinned       = 32
	MaxUnpinnedWhat   = 512
	MaxUnpinnedReason = 512
)

// unpinned checks one document's engine.unpinned.
func (c *checker) unpinned(t *Template) {
	if t.Engine == nil {
		return
	}
	us := t.Engine.Unpinned
	if len(us) > MaxUnpinned {
		c.errf("engine.unpinned", "must list at most %d downloads, not %d", MaxUnpinned, len(us))
	}
	seen := map[string]int{}
	for i, u := range us {
		f := indexPath("engine.unpinned", i)
		if c.unpinnedText(f+".what", u.What, MaxUnpinnedWhat) {
			switch {
			case strings.ContainsFunc(u.What, unicode.IsSpace):
				c.errf(f+".what", "must be one URL or image reference, without spaces, not %q", u.What)
			default:
				if j, dup := seen[u.What]; dup {
					c.errf(f+".what", "%q is already declared by engine.unpinned[%d]", u.What, j)
				} else {
					seen[u.What] = i
				}
			}
		}
		c.unpinnedText(f+".reason", u.Reason, MaxUnpinnedReason)
	}
}

// unpinnedText checks a required one-line field: set, not blank, at most
// maxLen characters, no control characters. It reports whether it passed.
func (c *checker) unpinnedText(f, s string, maxLen int) bool {
	switch {
	case s == "":
		c.errf(f, "must be set")
	case strings.TrimSpace(s) == "":
		c.errf(f, "must not be blank")
	case utf8.RuneCountInString(s) > maxLen:
		c.errf(f, "must be at most %d characters, not %d", maxLen, utf8.RuneCountInString(s))
	default:
		if _, _, bad := controlRune(s, false); bad {
			return false // bounds reports it, with the character's name
		}
		return true
	}
	return false
}

// UnpinnedDownloads returns what the template's guest downloads without a
// pin (engine.unpinned of the composed template); nil when nothing.
func (t *Template) UnpinnedDownloads() []Unpinned {
	if t == nil || t.Engine == nil {
		return nil
	}
	return t.Engine.Unpinned
}
