package isolation

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/exec"
)

// GuestProxy is where a guest with egress proxy reaches the proxy
// (framework/machine GuestProxyAddr:GuestProxyPort).
const GuestProxy = "10.0.2.100:3128"

// tcpProbe is a bash function: tcp HOST PORT prints "open <first bytes>"
// or "closed", within 5 seconds.
const tcpProbe = `tcp() {
  local out
  if out=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2" || exit 1; printf "GET / HTTP/1.0\r\n\r\n" >&3; timeout 3 head -c 120 <&3; exit 0' _ "$1" "$2" 2>/dev/null); then
    echo "open $(printf '%s' "$out" | tr -c '[:print:]' ' ')"
  else
    echo closed
  fi
}
`

func bash(script string) string { return "bash -c " + exec.Quote(script) }

// loopbackScript tries the host's loopback canary through the user
// network's gateway alias (10.0.2.2), the DNS alias (10.0.2.3), the
// default gateway the guest was given, and 10.0.2.4 (slirp's SMB alias).
func loopbackScript(port int) string {
	return tcpProbe + fmt.Sprintf(`gw=$(ip -4 route show default 2>/dev/null | awk '{print $3; exit}')
for a in 10.0.2.2 10.0.2.3 10.0.2.4 $gw; do echo "$a $(tcp "$a" %d)"; done
`, port)
}

func checkHostLoopback(ctx context.Context, in Input) (Status, string) {
	out, err := run(ctx, in.Guest, bash(loopbackScript(in.Canaries.Port)), false, "")
	if err != nil {
		return Skipped, err.Error()
	}
	return heldUnless(strings.Contains(out, in.Canaries.Token), "the host's 127.0.0.1 canary answered the guest: "+oneLine(out), oneLine(out))
}

func checkMetadata(ctx context.Context, in Input) (Status, string) {
	out, err := run(ctx, in.Guest, bash(tcpProbe+`echo "169.254.169.254:80 $(tcp 169.254.169.254 80)"`), false, "")
	if err != nil {
		return Skipped, err.Error()
	}
	return heldUnless(strings.Contains(out, " open "), oneLine(out), oneLine(out))
}

func checkDirectEgress(ctx context.Context, in Input) (Status, string) {
	if in.Targets.IPv4 == "" {
		return Skipped, "no outside IPv4 address known on the host to try"
	}
	out, err := run(ctx, in.Guest, bash(tcpProbe+fmt.Sprintf(`echo "%[1]s:80 $(tcp %[1]s 80)"; echo "%[1]s:443 $(tcp %[1]s 443)"`, in.Targets.IPv4)), false, "")
	if err != nil {
		return Skipped, err.Error()
	}
	return heldUnless(strings.Contains(out, " open"), "the guest opened a direct connection to an IP literal: "+oneLine(out), oneLine(out))
}

func checkGuestDNS(ctx context.Context, in Input) (Status, string) {
	name := in.Targets.Host
	if name == "" {
		name = "deb.debian.org"
	}
	out, err := run(ctx, in.Guest, fmt.Sprintf(`timeout 15 getent ahostsv4 %s | head -1 || echo unresolved`, exec.Quote(name)), false, "")
	if err != nil {
		return Skipped, err.Error()
	}
	out = strings.TrimSpace(out)
	return heldUnless(out != "unresolved" && out != "", "the guest resolved "+name+" itself: "+out, "the guest cannot resolve "+name+" (DNS does not leave it)")
}

func checkIPv6(ctx context.Context, in Input) (Status, string) {
	script := `echo "global=$(ip -6 -o addr show scope global 2>/dev/null | awk '{print $4}' | tr '\n' ' ')"`
	if in.Targets.IPv6 != "" {
		script = tcpProbe + script + fmt.Sprintf("\necho \"[%[1]s]:80 $(tcp %[1]s 80)\"", in.Targets.IPv6)
	}
	out, err := run(ctx, in.Guest, bash(script), false, "")
	if err != nil {
		return Skipped, err.Error()
	}
	return heldUnless(strings.Contains(out, " open"), "the guest reached an IPv6 address: "+oneLine(out), oneLine(out))
}

// checkPolicy: egress is what the template declares. proxy: an allowed
// host answers through the proxy, a denied host and an IP literal are
// refused (403); none: the proxy address is closed; nat: nothing to hold
// the guest to (held, reported as open).
func checkPolicy(ctx context.Context, in Input) (Status, string) {
	pol := in.Template.NetworkPolicy()
	switch pol.Egress {
	case catalog.EgressNAT:
		return Held, "egress nat: the guest's egress is open by declaration"
	case catalog.EgressNone:
		out, err := run(ctx, in.Guest, bash(tcpProbe+`echo "proxy $(tcp 10.0.2.100 3128)"`), false, "")
		if err != nil {
			return Skipped, err.Error()
		}
		return heldUnless(strings.Contains(out, " open"), "egress none, yet something answers at "+GuestProxy, oneLine(out))
	}
	host := in.Targets.Host
	if host == "" && len(pol.Allow) > 0 {
		host = pol.Allow[0]
	}
	denied := in.Targets.Denied
	if denied == "" {
		denied = "example.org"
	}
	var lines []string
	code := func(url string) string {
		out, _ := run(ctx, in.Guest, fmt.Sprintf(`curl -s -o /dev/null -m 60 -w '%%{http_code}' -x http://%s %s; true`, GuestProxy, exec.Quote(url)), false, "")
		out = strings.TrimSpace(out)
		lines = append(lines, url+" → "+out)
		return out
	}
	allowed := code("http://" + host + "/")
	deniedCode := code("http://" + denied + "/")
	tlsDenied, _ := run(ctx, in.Guest, fmt.Sprintf(`curl -s -o /dev/null -m 60 -w '%%{http_code}' -x http://%s https://%s/ ; echo " exit=$?"`, GuestProxy, exec.Quote(denied)), false, "")
	lines = append(lines, "https://"+denied+"/ → "+strings.TrimSpace(tlsDenied))
	literal := "403"
	if in.Targets.IPv4 != "" {
		literal = code("http://" + in.Targets.IPv4 + "/")
	}
	detail := strings.Join(lines, "; ")
	ok := allowed != "000" && allowed != "403" && allowed != "" && deniedCode == "403" && literal == "403" && !strings.HasPrefix(strings.TrimSpace(tlsDenied), "200")
	return heldUnless(!ok, detail, detail)
}

// flushScript: guest root does what an agent with root would to get out:
// flushes nftables and iptables, accepts everything, routes everything and
// the metadata address through the gateway. (Routes only add ways out: an
// on-link route to 169.254.0.0/16 would make the metadata address
// unreachable under nat and change the next check's verdict.)
const flushScript = `nft flush ruleset 2>/dev/null
for t in iptables ip6tables; do $t -P OUTPUT ACCEPT 2>/dev/null; $t -P INPUT ACCEPT 2>/dev/null; $t -F 2>/dev/null; done
dev=$(ip -o -4 route show default | awk '{print $5; exit}')
ip route replace default via 10.0.2.2 dev "$dev" 2>/dev/null
ip route replace 169.254.169.254 via 10.0.2.2 dev "$dev" 2>/dev/null
ip route replace 127.0.0.0/8 via 10.0.2.2 dev "$dev" table 100 2>/dev/null
true`

// checkAfterFlush: after guest root flushed its firewall and added routes,
// what held before still holds: the loopback canary, the metadata address
// and a direct connection to an IP literal stay out of reach (the policy is
// enforced by the host, not by the guest). A property that did not hold
// before the flush is reported by its own check, not again here.
func checkAfterFlush(ctx context.Context, in Input) (Status, string) {
	if _, err := run(ctx, in.Guest, flushScript, true, ""); err != nil {
		return Skipped, "flushing the guest firewall: " + err.Error()
	}
	var changed, details []string
	for _, c := range []struct {
		prop  string
		check func(context.Context, Input) (Status, string)
	}{
		{PropNetHostLoopback, checkHostLoopback},
		{PropNetMetadata, checkMetadata},
		{PropNetDirectEgress, checkDirectEgress},
	} {
		st, d := c.check(ctx, in)
		details = append(details, fmt.Sprintf("%s: %s", c.prop, st))
		if before, ok := in.prior[c.prop]; ok && before != Held {
			continue
		}
		if st == NotHeld {
			changed = append(changed, c.prop+" ("+d+")")
		}
	}
	if len(changed) > 0 {
		return NotHeld, "after the flush: " + strings.Join(changed, "; ")
	}
	return Held, strings.Join(details, "; ")
}

// checkGuestListeners: the guest listens on a port nobody declared; the
// host must publish nothing but the declared ports (the QEMU process's
// listening sockets on the host).
func checkGuestListeners(ctx context.Context, in Input) (Status, string) {
	if in.QEMUPid == 0 {
		return Skipped, "no QEMU pid"
	}
	// A listener in the guest on an undeclared port (systemd-socket-activate
	// ships with systemd; if it is missing the host-side check still runs).
	_, _ = run(ctx, in.Guest, `command -v systemd-socket-activate >/dev/null && systemd-run --unit=gc-isolation-listen --collect systemd-socket-activate -l 0.0.0.0:18080 --inetd -a /bin/echo guest-listener >/dev/null 2>&1; true`, true, "")
	ports, err := ListeningPorts(in.QEMUPid)
	if err != nil {
		return Skipped, err.Error()
	}
	var extra []int
	for _, p := range ports {
		if !slices.Contains(in.PublishedPorts, p) {
			extra = append(extra, p)
		}
	}
	_, _ = run(ctx, in.Guest, `systemctl stop gc-isolation-listen >/dev/null 2>&1; true`, true, "")
	detail := fmt.Sprintf("QEMU listens on %v, declared %v", ports, in.PublishedPorts)
	return heldUnless(len(extra) > 0, detail, detail)
}

// ListeningPorts are the TCP ports a process listens on (its sockets in
// LISTEN state, from /proc).
func ListeningPorts(pid int) ([]int, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, fmt.Errorf("listing QEMU's sockets: %w", err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var ports []int
	for _, tab := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(tab)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			// sl local_address rem_address st ... uid timeout inode
			if len(fs) < 10 || fs[3] != "0A" || !inodes[fs[9]] {
				continue
			}
			if i := strings.LastIndexByte(fs[1], ':'); i >= 0 {
				if p, err := strconv.ParseInt(fs[1][i+1:], 16, 32); err == nil && !slices.Contains(ports, int(p)) {
					ports = append(ports, int(p))
				}
			}
		}
		f.Close()
	}
	slices.Sort(ports)
	return ports, nil
}

// heldUnless is NotHeld with failDetail when leak, else Held with detail.
func heldUnless(leak bool, failDetail, detail string) (Status, string) {
	if leak {
		return NotHeld, failDetail
	}
	return Held, detail
}

// HostTargets resolves host on the host (its IPv4 and IPv6 addresses) for
// the egress checks; what does not resolve stays empty (the checks that
// need it are skipped). denied is a name the proxy must refuse.
func HostTargets(ctx context.Context, host, denied string) EgressTargets {
	t := EgressTargets{Host: host, Denied: denied}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return t
	}
	for _, a := range ips {
		if v4 := a.IP.To4(); v4 != nil && t.IPv4 == "" {
			t.IPv4 = v4.String()
		} else if v4 == nil && t.IPv6 == "" {
			t.IPv6 = a.IP.String()
		}
	}
	return t
}
