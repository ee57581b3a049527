package download

import (
	"fmt"
	"net/url"
	"strings"
)

// EnvMirrors is the environment variable read by MirrorsFromEnv:
// comma-separated PREFIX=MIRROR pairs.
const EnvMirrors = "GUESTCATALOG_MIRRORS"

// Mirror rewrites URLs that start with Prefix to start with Replacement.
// The cache key stays the original URL, so an image fetched through a
// mirror is a cache hit for its upstream URL and the other way round.
type Mirror struct {
	Prefix      string
	Replacement string
}

// ParseMirrors parses PREFIX=MIRROR specs (as given to --mirror). A spec
// may itself hold several comma-separated pairs (as in GUESTCATALOG_MIRRORS).
// Empty specs are skipped.
func ParseMirrors(specs ...string) ([]Mirror, error) {
	var out []Mirror
	for _, spec := range specs {
		for _, pair := range strings.Split(spec, ",") {
			pair = strings.TrimSpace(pair)
			if pair == "" {
				continue
			}
			prefix, repl, ok := strings.Cut(pair, "=")
			prefix, repl = strings.TrimSpace(prefix), strings.TrimSpace(repl)
			if !ok || prefix == "" || repl == "" {
				return nil, fmt.Errorf("mirror %q: want PREFIX=MIRROR, e.g. https://cloud.debian.org/images/=http://mirror.lan/debian-images/", pair)
			}
			u, err := url.Parse(repl)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, fmt.Errorf("mirror %q: %q is not an http(s) URL", pair, repl)
			}
			out = append(out, Mirror{Prefix: prefix, Replacement: repl})
		}
	}
	return out, nil
}

// Rewrite returns rawURL with the longest matching mirror prefix replaced;
// among equally long prefixes the last one wins (so flags given after the
// environment override it). Without a match it returns rawURL.
func Rewrite(rawURL string, mirrors []Mirror) string {
	best := -1
	for i, m := range mirrors {
		if strings.HasPrefix(rawURL, m.Prefix) && (best < 0 || len(m.Prefix) >= len(mirrors[best].Prefix)) {
			best = i
		}
	}
	if best < 0 {
		return rawURL
	}
	return mirrors[best].Replacement + strings.TrimPrefix(rawURL, mirrors[best].Prefix)
}
