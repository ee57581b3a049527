package qemu

import (
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Share is a host directory exported to the guest over 9p (virtio-9p-pci;
// QEMU 7.2 has it built in, virtiofsd does not install on Debian 12). The
// guest mounts it with `mount -t 9p -o trans=virtio,version=9p2000.L TAG DIR`.
//
// Security models, chosen per share:
//   - writable: mapped-xattr. QEMU creates every file as itself with
//     ordinary permissions and keeps the guest's owner, mode and file type
//     in user.virtfs.* xattrs: a guest (even root) cannot plant a setuid
//     file, a device node or a symlink on the host; a guest symlink is a
//     regular file on the host, which no host program follows. passthrough
//     and none would apply the guest's owner and mode for real (QEMU runs as
//     root here), and mapped-file leaves .virtfs_metadata directories in the
//     user's tree. The host directory must support user xattrs (ext4, xfs,
//     btrfs; tmpfs only from Linux 6.6).
//   - read-only: none with readonly=on. QEMU's 9p server refuses every
//     modifying request (EROFS) whatever the guest mounts it as, so guest
//     root remounting it read-write gains nothing; none needs no xattrs, so
//     the reference directory may be on any filesystem, and the guest sees
//     the host's real owners and modes.
type Share struct {
	// Tag is the 9p mount tag the guest names (at most 31 bytes).
	Tag string
	// HostPath is the exported directory (absolute).
	HostPath string
	// ReadOnly makes QEMU refuse writes (host-side enforcement).
	ReadOnly bool
}

// GuestForward lets a restricted guest open TCP connections to one
// address: every connection the guest makes to GuestAddr:GuestPort is
// relayed to Target (host:port on the host), and nothing else leaves the
// guest (see Spec.Restrict).
type GuestForward struct {
	// GuestAddr is an address in the user network (10.0.2.0/24), not the
	// gateway (10.0.2.2), DNS (10.0.2.3) or the guest's own (10.0.2.15).
	GuestAddr string
	GuestPort int
	// Target is the host-side address (127.0.0.1:PORT).
	Target string
}

// MaxTagLen is the longest 9p mount tag QEMU accepts.
const MaxTagLen = 31

// validTag is the pattern of the mount tags Cmdline accepts.
const validTag = `^[A-Za-z0-9][A-Za-z0-9_.-]*$`

// sandboxNetdev adds the restriction and the guest forwards to the
// user-mode network's -netdev value.
//
// restrict=on (libslirp): the guest can no longer reach the host or the
// outside: TCP connections other than guestfwd ones are reset, UDP other
// than slirp's own DHCP and TFTP is dropped (so is the built-in DNS at
// 10.0.2.3), and the gateway alias 10.0.2.2, which otherwise reaches every
// service on the host's loopback, answers nothing. hostfwd (SSH, declared
// port forwards) still works: it is initiated by the host. IPv6 is turned
// off as well, so that nothing depends on how restrict treats it.
//
// A guestfwd to a chardev would share one host connection between every
// guest connection, so each guest connection runs the relay command
// (cmd:), which QEMU spawns (g_shell_parse_argv, no shell) with the
// connection as its stdin and stdout.
func sandboxNetdev(netdev string, s Spec) string {
	if !s.Restrict {
		return netdev
	}
	netdev += ",restrict=on,ipv6=off"
	for _, g := range s.GuestForwards {
		netdev += fmt.Sprintf(",guestfwd=tcp:%s:%d-cmd:%s", g.GuestAddr, g.GuestPort, qopt(RelayCommand(g.Target)))
	}
	return netdev
}

// sandboxArgs returns the -fsdev/-device pairs of the shares.
func sandboxArgs(s Spec) []string {
	var a []string
	for i, sh := range s.Shares {
		a = append(a, ShareArgs(fmt.Sprintf("fsdev%d", i), sh)...)
	}
	return a
}

// ShareArgs are the -fsdev/-device pair that export one share under the
// fsdev id (unique on the command line; the caller checks the tag).
func ShareArgs(id string, sh Share) []string {
	opts := []string{"local", "id=" + id, "path=" + qopt(sh.HostPath)}
	if sh.ReadOnly {
		opts = append(opts, "security_model=none", "readonly=on")
	} else {
		opts = append(opts, "security_model=mapped-xattr")
	}
	// Files of several host filesystems under one share would collide
	// in the guest's inode numbers: remap them (QEMU warns otherwise).
	opts = append(opts, "multidevs=remap")
	return []string{"-fsdev", strings.Join(opts, ","),
		"-device", "virtio-9p-pci,fsdev=" + id + ",mount_tag=" + sh.Tag}
}

// relayScript is the guestfwd relay: perl (perl-base is Essential in
// Debian, so every host has it) copying between the connection QEMU hands
// it on stdin/stdout and a TCP connection to the target, half-closing each
// side when the other ends. No single quote inside: the command is parsed
// by g_shell_parse_argv.
const relayScript = `use IO::Socket::INET; use IO::Select;` +
	` my $t = IO::Socket::INET->new(PeerAddr => $ARGV[0], Proto => "tcp", Timeout => 10) or exit 1;` +
	` binmode STDIN; binmode STDOUT; $| = 1;` +
	` my $sel = IO::Select->new(\*STDIN, $t);` +
	` sub put { my ($h, $d) = @_; while (length $d) { my $n = syswrite($h, $d); return 0 unless $n; substr($d, 0, $n) = ""; } 1 }` +
	` while ($sel->count) { for my $h ($sel->can_read) {` +
	` my $to = fileno($h) == fileno($t) ? \*STDOUT : $t;` +
	` my $n = sysread($h, my $buf, 65536);` +
	` if (!$n) { $sel->remove($h); shutdown($to, 1); next }` +
	` exit 0 unless put($to, $buf); } }`

// RelayArgv is the argv of the relay QEMU runs for each guest connection
// of a GuestForward to target.
func RelayArgv(target string) []string {
	return []string{"perl", "-e", relayScript, target}
}

// RelayCommand is RelayArgv as the cmd: of a guestfwd (quoted for
// g_shell_parse_argv; before QEMU's comma escaping).
func RelayCommand(target string) string {
	argv := RelayArgv(target)
	for i, a := range argv {
		if strings.ContainsAny(a, " \"$\\;{}()<>*@|&=!?") {
			argv[i] = "'" + a + "'"
		}
	}
	return strings.Join(argv, " ")
}

// validateSandbox reports the problems of the shares and guest forwards.
func (s Spec) validateSandbox() []error {
	var errs []error
	add := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	tags := map[string]int{}
	tagRE := regexp.MustCompile(validTag)
	for i, sh := range s.Shares {
		f := fmt.Sprintf("shares[%d]", i)
		switch {
		case sh.Tag == "":
			add("%s.tag: must be set", f)
		case len(sh.Tag) > MaxTagLen || !tagRE.MatchString(sh.Tag):
			add("%s.tag: %q must match %s and be at most %d bytes", f, sh.Tag, validTag, MaxTagLen)
		default:
			if j, dup := tags[sh.Tag]; dup {
				add("%s.tag: %q is already used by shares[%d]", f, sh.Tag, j)
			}
			tags[sh.Tag] = i
		}
		if !filepath.IsAbs(sh.HostPath) || filepath.Clean(sh.HostPath) != sh.HostPath {
			add("%s.hostPath: must be a clean absolute path, not %q", f, sh.HostPath)
		}
	}
	if len(s.GuestForwards) > 0 && !s.Restrict {
		add("guestForwards: only with restrict (an unrestricted guest reaches the host anyway)")
	}
	if s.Restrict && s.NoNetwork {
		add("restrict: set with noNetwork")
	}
	_, userNet, _ := net.ParseCIDR("10.0.2.0/24")
	for i, g := range s.GuestForwards {
		f := fmt.Sprintf("guestForwards[%d]", i)
		ip := net.ParseIP(g.GuestAddr).To4()
		switch {
		case ip == nil || !userNet.Contains(ip):
			add("%s.guestAddr: must be an IPv4 address in 10.0.2.0/24, not %q", f, g.GuestAddr)
		case g.GuestAddr == "10.0.2.2" || g.GuestAddr == "10.0.2.3" || g.GuestAddr == "10.0.2.15":
			add("%s.guestAddr: %s is the user network's gateway, DNS or guest address", f, g.GuestAddr)
		}
		if g.GuestPort < 1 || g.GuestPort > 65535 {
			add("%s.guestPort: must be 1-65535, got %d", f, g.GuestPort)
		}
		if h, p, err := net.SplitHostPort(g.Target); err != nil || h == "" {
			add("%s.target: must be host:port, not %q", f, g.Target)
		} else if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			add("%s.target: must be host:port, not %q", f, g.Target)
		}
	}
	return errs
}
