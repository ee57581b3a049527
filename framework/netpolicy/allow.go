package netpolicy

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// DefaultPorts are the ports an allowlist entry without :port allows.
func DefaultPorts() []int { return []int{80, 443} }

// Allowlist is a parsed allowlist. Entries (catalog Network.Allow):
//   - deb.debian.org — that name exactly (case-insensitive, trailing dot
//     ignored);
//   - *.debian.org — every name below debian.org, not debian.org itself;
//   - 192.0.2.1, 2001:db8::1 — that IP literal; an IP literal a client asks
//     for is refused unless it is listed as such (an allowed name does not
//     allow its addresses);
//   - any of these with :port — that port only; without, 80 and 443.
type Allowlist struct {
	entries []entry
}

type entry struct {
	host     string // lowercased; for wildcards the suffix with its dot (.debian.org)
	wildcard bool
	ip       net.IP
	ports    []int
}

// ParseAllowlist parses entries, reporting the first invalid one.
func ParseAllowlist(entries []string) (Allowlist, error) {
	var a Allowlist
	for i, s := range entries {
		e, err := parseEntry(s)
		if err != nil {
			return Allowlist{}, fmt.Errorf("netpolicy: allow[%d]: %w", i, err)
		}
		a.entries = append(a.entries, e)
	}
	return a, nil
}

func parseEntry(s string) (entry, error) {
	host, ports := s, DefaultPorts()
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return entry{}, fmt.Errorf("%q: bad port", s)
		}
		host, ports = h, []int{n}
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if ip := net.ParseIP(host); ip != nil {
		return entry{ip: ip, ports: ports}, nil
	}
	e := entry{host: host, ports: ports}
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		e.host, e.wildcard = "."+rest, true
	}
	name := strings.TrimPrefix(e.host, ".")
	if name == "" || strings.ContainsAny(name, "*/:@ ") || strings.Contains(name, "..") {
		return entry{}, fmt.Errorf("%q is not a host name, *.domain or IP address", s)
	}
	return e, nil
}

// Allows says whether host:port may be reached, and why not.
func (a Allowlist) Allows(host string, port int) (bool, string) {
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	ip := net.ParseIP(host)
	for _, e := range a.entries {
		if !slices.Contains(e.ports, port) {
			continue
		}
		switch {
		case ip != nil:
			if e.ip != nil && e.ip.Equal(ip) {
				return true, ""
			}
		case e.wildcard:
			if strings.HasSuffix(host, e.host) {
				return true, ""
			}
		case e.ip == nil && e.host == host:
			return true, ""
		}
	}
	if ip != nil {
		return false, "IP address not in the allowlist (allow names, or list the address itself)"
	}
	return false, "not in the allowlist"
}
