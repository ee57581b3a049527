package freshness

import (
	"bufio"
	"bytes"
	"html"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// Sums are the entries of a checksum file: file name → algorithm → hex.
type Sums map[string]map[string]string

var (
	bsdLine = regexp.MustCompile(`^(SHA256|SHA512|SHA384|SHA224|SHA1|MD5)\s*\((.+)\)\s*=\s*([0-9a-fA-F]+)$`)
	gnuLine = regexp.MustCompile(`^([0-9a-fA-F]{32,128})\s+\*?(.+)$`)
	bareHex = regexp.MustCompile(`^([0-9a-fA-F]{64}|[0-9a-fA-F]{128})$`)
)

// ParseSums reads a checksum file in any of the formats distros publish:
// GNU coreutils lines (`<hex>  <file>` or `<hex> *<file>`: Ubuntu SHA256SUMS,
// Debian SHA512SUMS, Alpine .sha512, Arch .SHA256), BSD tagged lines
// (`SHA256 (<file>) = <hex>`: Fedora, Rocky, AlmaLinux CHECKSUM), optionally
// inside a PGP clear-signed message (Fedora), with `#` comments. A file
// holding a bare digest is stored under the name "".
func ParseSums(data []byte) Sums {
	sums := Sums{}
	add := func(name, algo, hex string) {
		name = strings.TrimPrefix(strings.TrimSpace(name), "./")
		if sums[name] == nil {
			sums[name] = map[string]string{}
		}
		sums[name][algo] = strings.ToLower(hex)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	inSigned, inHeaders, inSignature := false, false, false
	for sc.Scan() {
		line := strings.TrimRightFunc(sc.Text(), unicode.IsSpace)
		switch {
		case line == "-----BEGIN PGP SIGNED MESSAGE-----":
			inSigned, inHeaders = true, true
			continue
		case line == "-----BEGIN PGP SIGNATURE-----":
			inSignature = true
			continue
		case line == "-----END PGP SIGNATURE-----":
			inSignature = false
			continue
		}
		if inSignature {
			continue
		}
		if inSigned && inHeaders {
			if line == "" {
				inHeaders = false
			}
			continue
		}
		if inSigned {
			line = strings.TrimPrefix(line, "- ") // dash-escaped lines
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if m := bsdLine.FindStringSubmatch(line); m != nil {
			add(m[2], strings.ToLower(m[1]), m[3])
			continue
		}
		if m := gnuLine.FindStringSubmatch(line); m != nil {
			if algo := algoForHex(m[1]); algo != "" {
				add(m[2], algo, m[1])
			}
			continue
		}
		if m := bareHex.FindStringSubmatch(line); m != nil {
			add("", algoForHex(m[1]), m[1])
		}
	}
	return sums
}

func algoForHex(hex string) string {
	switch len(hex) {
	case 32:
		return "md5"
	case 40:
		return "sha1"
	case 56:
		return "sha224"
	case 64:
		return "sha256"
	case 96:
		return "sha384"
	case 128:
		return "sha512"
	}
	return ""
}

// Lookup returns the hex digest of file with algo. A file with a single
// bare digest answers for any name.
func (s Sums) Lookup(file, algo string) (string, bool) {
	if e, ok := s[file]; ok {
		h, ok := e[algo]
		return h, ok
	}
	if e, ok := s[""]; ok && len(s) == 1 {
		h, ok := e[algo]
		return h, ok
	}
	return "", false
}

// Algos lists the algorithms a file is listed with.
func (s Sums) Algos(file string) []string { return sortedKeys(s[file]) }

var hrefAttr = regexp.MustCompile(`(?i)<a\s[^>]*?href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))`)

// ParseListing returns the entries of an HTML directory index (Apache's
// fancy or table index, nginx's autoindex, and the like): the relative
// hrefs, unescaped, directories ending in "/", in page order, without sort
// links, parent links and absolute URLs. The link texts are not used: nginx
// and Apache truncate long names there ("..>").
func ParseListing(page []byte) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range hrefAttr.FindAllSubmatch(page, -1) {
		href := string(m[1]) + string(m[2]) + string(m[3])
		href = html.UnescapeString(href)
		if u, err := url.PathUnescape(href); err == nil {
			href = u
		}
		href = strings.TrimPrefix(href, "./")
		switch {
		case href == "", strings.HasPrefix(href, "?"), strings.HasPrefix(href, "#"),
			strings.HasPrefix(href, "/"), strings.HasPrefix(href, "../"), href == "..",
			strings.Contains(href, "://"), strings.HasPrefix(href, "mailto:"):
			continue
		}
		if !seen[href] {
			seen[href] = true
			out = append(out, href)
		}
	}
	return out
}

// compareVersions orders version-like strings (20260712-2537, 1.10,
// 9.8-20260525.0) by their runs of digits as numbers and the rest as text.
func compareVersions(a, b string) int {
	ca, cb := chunks(a), chunks(b)
	for i := 0; i < len(ca) && i < len(cb); i++ {
		x, y := ca[i], cb[i]
		xn, xerr := strconv.ParseUint(x, 10, 64)
		yn, yerr := strconv.ParseUint(y, 10, 64)
		switch {
		case xerr == nil && yerr == nil:
			if xn != yn {
				if xn < yn {
					return -1
				}
				return 1
			}
		case x != y:
			return strings.Compare(x, y)
		}
	}
	switch {
	case len(ca) < len(cb):
		return -1
	case len(ca) > len(cb):
		return 1
	}
	return 0
}

func chunks(s string) []string {
	var out []string
	start := 0
	for i := 1; i <= len(s); i++ {
		if i == len(s) || isDigit(s[i]) != isDigit(s[start]) {
			out = append(out, s[start:i])
			start = i
		}
	}
	return out
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
