package isolation

import (
	"fmt"
	"strings"
)

// Status of one property.
type Status string

// Statuses.
const (
	Held    Status = "held"
	NotHeld Status = "not-held"
	Skipped Status = "skipped"
)

// Property names: stable, used in reports and label filters.
const (
	PropMountsOnlyDeclared   = "mounts/only-declared"
	PropMountsNoToken        = "mounts/token-nowhere"
	PropMountsReadOnlyOnHost = "mounts/read-only-on-host"
	PropMountsSymlinkOnHost  = "mounts/symlink-not-followed"
	PropMountsWritable       = "mounts/workspace-writable"

	PropNetHostLoopback   = "network/host-loopback-unreachable"
	PropNetMetadata       = "network/metadata-unreachable"
	PropNetDirectEgress   = "network/no-direct-egress"
	PropNetDNS            = "network/no-guest-dns"
	PropNetIPv6           = "network/no-ipv6-egress"
	PropNetPolicy         = "network/egress-matches-policy"
	PropNetAfterFlush     = "network/holds-after-firewall-flush"
	PropNetGuestListeners = "network/guest-ports-published-only-when-declared"

	PropCredNoForwarding = "credentials/no-agent-or-x11-forwarding"
	PropCredNoToken      = "credentials/token-not-in-guest"

	PropResources     = "resources/cpus-and-memory-as-declared"
	PropResourcesDisk = "resources/disk-fills-at-declared-size"

	PropSnapshotUnique = "snapshot/resumes-differ-in-random"

	PropTeardown = "teardown/nothing-left"
)

// Result is the outcome of one property.
type Result struct {
	Property string `json:"property"`
	Status   Status `json:"status"`
	// Detail says what was observed (the evidence), or why it was skipped.
	Detail  string  `json:"detail,omitempty"`
	Seconds float64 `json:"seconds"`
}

// Profile is a template's isolation profile: every property, held or not.
type Profile struct {
	Template string `json:"template"`
	// Strict: the template declares isolation: strict, so a property not
	// held fails it; otherwise the profile is only reported.
	Strict  bool     `json:"strict"`
	Results []Result `json:"results"`
}

// NotHeld returns the properties that did not hold.
func (p Profile) NotHeld() []string {
	var out []string
	for _, r := range p.Results {
		if r.Status == NotHeld {
			out = append(out, r.Property)
		}
	}
	return out
}

// Get returns the result of a property (Status "" when it was not run).
func (p Profile) Get(prop string) Result {
	for _, r := range p.Results {
		if r.Property == prop {
			return r
		}
	}
	return Result{Property: prop}
}

// String is a one-line-per-property table.
func (p Profile) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "isolation profile of %s (strict: %v)\n", p.Template, p.Strict)
	for _, r := range p.Results {
		fmt.Fprintf(&b, "  %-9s %-50s %5.1fs  %s\n", r.Status, r.Property, r.Seconds, oneLine(r.Detail))
	}
	return b.String()
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// Properties lists the in-guest properties Run checks, in its order
// (teardown is checked after close, by CheckTeardown).
func Properties() []string {
	return []string{
		PropCredNoToken, PropMountsOnlyDeclared, PropMountsWritable, PropMountsReadOnlyOnHost, PropMountsSymlinkOnHost,
		PropCredNoForwarding, PropResources, PropNetGuestListeners, PropNetHostLoopback, PropNetMetadata,
		PropNetDirectEgress, PropNetDNS, PropNetIPv6, PropNetPolicy, PropNetAfterFlush,
		PropResourcesDisk, PropSnapshotUnique,
	}
}
