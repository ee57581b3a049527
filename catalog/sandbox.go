package catalog

import (
	"net"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Egress policies of a template's network.
const (
	// EgressNAT is QEMU's user-mode network as every template had it before
	// network policies: the guest reaches whatever the host reaches,
	// including the host's loopback through the gateway address 10.0.2.2.
	EgressNAT = "nat"
	// EgressNone cuts the guest off (slirp restrict=on): only the ports the
	// framework forwards into the guest (SSH, declared portForwards) work.
	EgressNone = "none"
	// EgressProxy is EgressNone plus one way out: an HTTP(S) proxy the
	// framework runs on the host that lets through only Network.Allow.
	EgressProxy = "proxy"
)

// IsolationStrict is the value of Template.Isolation that makes the
// isolation suite fail a template when a property does not hold.
const IsolationStrict = "strict"

// KernelCloud and KernelGeneric are the build recipe's kernel flavours.
const (
	KernelCloud   = "cloud"
	KernelGeneric = "generic"
)

// Network is a template's network policy.
type Network struct {
	// Egress: nat (default), none or proxy.
	Egress string `yaml:"egress,omitempty" json:"egress,omitempty" jsonschema:"enum=none,enum=nat,enum=proxy"`
	// Allow lists what the proxy lets through (egress proxy only): host
	// names (deb.debian.org), *.suffix wildcards, or IP literals, each with
	// an optional :port (default: 80 and 443).
	Allow []string `yaml:"allow,omitempty" json:"allow,omitempty"`
	// HostLoopback says whether the guest may reach the host's loopback
	// services. Default true under nat (QEMU's user network always maps
	// 10.0.2.2 to it: false is refused there), false otherwise; true under
	// proxy lets the proxy connect to loopback addresses it allows.
	HostLoopback *bool `yaml:"hostLoopback,omitempty" json:"hostLoopback,omitempty"`
}

// NetworkPolicy returns the template's effective network policy, defaults
// applied (egress nat, host loopback on under nat only).
func (t *Template) NetworkPolicy() Network {
	n := Network{Egress: EgressNAT}
	if t.Network != nil {
		n.Egress = t.Network.Egress
		if n.Egress == "" {
			n.Egress = EgressNAT
		}
		n.Allow = slices.Clone(t.Network.Allow)
		if t.Network.HostLoopback != nil {
			b := *t.Network.HostLoopback
			n.HostLoopback = &b
		}
	}
	if n.HostLoopback == nil {
		b := n.Egress == EgressNAT
		n.HostLoopback = &b
	}
	return n
}

// Restricted says whether the guest's network is cut off from the host and
// the outside (every egress but nat).
func (n Network) Restricted() bool { return n.Egress != "" && n.Egress != EgressNAT }

// GuestPath is where the mount appears in the guest: MountPoint, or the
// location with a leading ~ replaced by home (the guest user's home).
func (m Mount) GuestPath(home string) string {
	if m.MountPoint != "" {
		return m.MountPoint
	}
	if rest, ok := strings.CutPrefix(m.Location, "~"); ok {
		return path.Join(home, rest)
	}
	return m.Location
}

// IsGuestSystemDir says whether a guest path is one a mount may not cover
// (the CLI's --mount checks it as mounts: does).
func IsGuestSystemDir(p string) bool { return isGuestSystemDir(p) }

// isGuestSystemDir says whether a guest path is one a mount may not cover:
// mounting over it would hide the guest's own system.
func isGuestSystemDir(p string) bool {
	switch p {
	case "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/proc", "/root", "/run", "/sbin", "/sys", "/tmp", "/usr", "/var":
		return true
	}
	return false
}

// allowHostPattern is an allowlist entry without port: a DNS name,
// optionally *.-prefixed.
const allowHostPattern = `^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`

// sandbox checks a document's mounts (beyond location and mountPoint being
// set and absolute), network policy and the build recipe's kernel.
func (c *checker) sandbox(t *Template) {
	seen := map[string]int{}
	for i, m := range t.Mounts {
		f := indexPath("mounts", i)
		if m.Location != "" && path.Clean(m.Location) != m.Location {
			c.errf(f+".location", "must be a clean path (no .., //, or trailing /), not %q", m.Location)
		}
		if m.MountPoint == "" {
			continue
		}
		switch {
		case path.Clean(m.MountPoint) != m.MountPoint:
			c.errf(f+".mountPoint", "must be a clean path (no .., //, or trailing /), not %q", m.MountPoint)
		case isGuestSystemDir(m.MountPoint):
			c.errf(f+".mountPoint", "%s is a guest system directory; mount below it", m.MountPoint)
		}
		if j, dup := seen[m.MountPoint]; dup {
			c.errf(f+".mountPoint", "%s is already mounted by mounts[%d]", m.MountPoint, j)
		}
		seen[m.MountPoint] = i
	}
	for i, im := range t.Images {
		if im.Build != nil {
			c.enum(indexPath("images", i)+".build.kernel", im.Build.Kernel, tagEnum[BuildRecipe]("Kernel"))
		}
	}
	c.enum("isolation", t.Isolation, tagEnum[Template]("Isolation"))
	n := t.Network
	if n == nil {
		return
	}
	c.enum("network.egress", n.Egress, tagEnum[Network]("Egress"))
	egress := n.Egress
	if egress == "" {
		egress = EgressNAT
	}
	switch {
	case egress == EgressProxy && len(n.Allow) == 0:
		c.errf("network.allow", "must list at least one host for egress proxy (nothing allowed is egress none)")
	case (egress == EgressNAT || egress == EgressNone) && len(n.Allow) > 0:
		c.errf("network.allow", "is only used with egress proxy, not %s", egress)
	}
	for i, a := range n.Allow {
		if msg := checkAllow(a); msg != "" {
			c.errf(indexPath("network.allow", i), "%s, not %q", msg, a)
		}
	}
	if n.HostLoopback != nil {
		switch {
		case egress == EgressNAT && !*n.HostLoopback:
			c.errf("network.hostLoopback", "cannot be false with egress nat: QEMU's user network maps 10.0.2.2 to the host's loopback (use egress proxy or none)")
		case egress == EgressNone && *n.HostLoopback:
			c.errf("network.hostLoopback", "cannot be true with egress none (the guest reaches nothing); use egress proxy and allow the loopback address")
		}
	}
}

// checkAllow returns what is wrong with an allowlist entry ("" when it is
// valid).
func checkAllow(a string) string {
	host, port := a, ""
	if h, p, err := net.SplitHostPort(a); err == nil {
		if _, err := strconv.Atoi(p); err == nil {
			host, port = h, p
		}
	}
	if net.ParseIP(host) == nil && (len(host) > 253 || !regexp.MustCompile(allowHostPattern).MatchString(host)) {
		return "must be a lowercase host name, *.domain, or an IP address, with an optional :port"
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "must have a port from 1 to 65535"
		}
	}
	return ""
}

// composeSandbox layers src's network policy and isolation over dst's.
// Mounts are concatenated by compose like port forwards.
func composeSandbox(dst, src *Template) {
	if s := src.Network; s != nil {
		if dst.Network == nil {
			dst.Network = &Network{}
		}
		setString(&dst.Network.Egress, s.Egress)
		if len(s.Allow) > 0 {
			dst.Network.Allow = slices.Clone(s.Allow)
		}
		if s.HostLoopback != nil {
			b := *s.HostLoopback
			dst.Network.HostLoopback = &b
		}
	}
	setString(&dst.Isolation, src.Isolation)
}

// copySandbox deep-copies the network policy of t into c.
func copySandbox(c, t *Template) {
	if t.Network == nil {
		return
	}
	n := t.Network.copy()
	c.Network = &n
}

func (n Network) copy() Network {
	n.Allow = slices.Clone(n.Allow)
	if n.HostLoopback != nil {
		b := *n.HostLoopback
		n.HostLoopback = &b
	}
	return n
}

// sandboxTemplate checks the composed template: a mount needs a guest
// kernel with 9p, and Debian's cloud kernel has none, so every local build
// recipe of a template with mounts must use the generic kernel.
func (c *checker) sandboxTemplate(t *Template) {
	if len(t.Mounts) == 0 {
		return
	}
	for i, im := range t.Images {
		if im.Build != nil && (im.Build.Kernel == "" || im.Build.Kernel == KernelCloud) {
			c.errf(indexPath("images", i)+".build.kernel", "must be generic for a template with mounts (Debian's cloud kernel has no 9p), not %q", im.Build.Kernel)
		}
	}
}
