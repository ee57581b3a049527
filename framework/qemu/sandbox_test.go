package qemu

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	osexec "os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// argAfter returns the values following each occurrence of flag in argv.
func argAfter(argv []string, flag string) []string {
	var out []string
	for i, a := range argv {
		if a == flag && i+1 < len(argv) {
			out = append(out, argv[i+1])
		}
	}
	return out
}

func TestCmdlineSandbox(t *testing.T) {
	relay := qopt(RelayCommand("127.0.0.1:41000"))
	for _, tc := range []struct {
		name    string
		modify  func(*Spec)
		netdev  string
		fsdevs  []string
		devices []string
	}{
		{"unrestricted (nat, today's default)", func(*Spec) {},
			"user,id=net0,hostfwd=tcp:127.0.0.1:40022-:22", nil, nil},
		{"egress none: restrict, no IPv6", func(s *Spec) { s.Restrict = true },
			"user,id=net0,hostfwd=tcp:127.0.0.1:40022-:22,restrict=on,ipv6=off", nil, nil},
		{"egress proxy: restrict plus one guestfwd through the relay", func(s *Spec) {
			s.Restrict = true
			s.GuestForwards = []GuestForward{{GuestAddr: "10.0.2.100", GuestPort: 3128, Target: "127.0.0.1:41000"}}
		}, "user,id=net0,hostfwd=tcp:127.0.0.1:40022-:22,restrict=on,ipv6=off,guestfwd=tcp:10.0.2.100:3128-cmd:" + relay, nil, nil},
		{"a writable and a read-only share", func(s *Spec) {
			s.Shares = []Share{{Tag: "mount0", HostPath: "/srv/work,1"}, {Tag: "mount1", HostPath: "/srv/ref", ReadOnly: true}}
		}, "user,id=net0,hostfwd=tcp:127.0.0.1:40022-:22",
			[]string{
				"local,id=fsdev0,path=/srv/work,,1,security_model=mapped-xattr,multidevs=remap",
				"local,id=fsdev1,path=/srv/ref,security_model=none,readonly=on,multidevs=remap",
			},
			[]string{"virtio-9p-pci,fsdev=fsdev0,mount_tag=mount0", "virtio-9p-pci,fsdev=fsdev1,mount_tag=mount1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := baseSpec()
			tc.modify(&s)
			argv, err := Cmdline(s)
			require.NoError(t, err)
			assert.Equal(t, []string{tc.netdev}, argAfter(argv, "-netdev"))
			assert.Equal(t, tc.fsdevs, argAfter(argv, "-fsdev"))
			var nine []string
			for _, d := range argAfter(argv, "-device") {
				if strings.HasPrefix(d, "virtio-9p") {
					nine = append(nine, d)
				}
			}
			assert.Equal(t, tc.devices, nine)
		})
	}
}

// TestCmdlineRestrictKeepsCommas: QEMU splits -netdev at single commas,
// so every comma of the relay script must be doubled.
func TestCmdlineRestrictKeepsCommas(t *testing.T) {
	s := baseSpec()
	s.Restrict = true
	s.GuestForwards = []GuestForward{{GuestAddr: "10.0.2.100", GuestPort: 3128, Target: "127.0.0.1:41000"}}
	argv, err := Cmdline(s)
	require.NoError(t, err)
	nd := argAfter(argv, "-netdev")[0]
	_, cmd, ok := strings.Cut(nd, "-cmd:")
	require.True(t, ok)
	assert.NotRegexp(t, `[^,],[^,]`, strings.ReplaceAll(cmd, ",,", ""), "an undoubled comma would end the option")
	assert.Equal(t, RelayCommand("127.0.0.1:41000"), strings.ReplaceAll(cmd, ",,", ","))
}

func TestSandboxValidation(t *testing.T) {
	s := baseSpec()
	s.Shares = []Share{
		{Tag: "", HostPath: "rel"},
		{Tag: "a tag", HostPath: "/x/../y"},
		{Tag: strings.Repeat("t", 32), HostPath: "/ok"},
		{Tag: "same", HostPath: "/a"},
		{Tag: "same", HostPath: "/b"},
	}
	s.GuestForwards = []GuestForward{
		{GuestAddr: "10.0.2.2", GuestPort: 3128, Target: "127.0.0.1:1"},
		{GuestAddr: "192.168.1.1", GuestPort: 0, Target: "nowhere"},
	}
	_, err := Cmdline(s)
	require.Error(t, err)
	for _, want := range []string{
		"shares[0].tag: must be set",
		`shares[0].hostPath: must be a clean absolute path, not "rel"`,
		`shares[1].tag: "a tag" must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$ and be at most 31 bytes`,
		`shares[1].hostPath: must be a clean absolute path, not "/x/../y"`,
		`shares[2].tag: "tttttttttttttttttttttttttttttttt" must match`,
		`shares[4].tag: "same" is already used by shares[3]`,
		"guestForwards: only with restrict (an unrestricted guest reaches the host anyway)",
		"guestForwards[0].guestAddr: 10.0.2.2 is the user network's gateway, DNS or guest address",
		`guestForwards[1].guestAddr: must be an IPv4 address in 10.0.2.0/24, not "192.168.1.1"`,
		"guestForwards[1].guestPort: must be 1-65535, got 0",
		`guestForwards[1].target: must be host:port, not "nowhere"`,
	} {
		assert.Contains(t, err.Error(), want)
	}
	s = baseSpec()
	s.NoNetwork, s.Forwards, s.Restrict = true, nil, true
	_, err = Cmdline(s)
	assert.ErrorContains(t, err, "restrict: set with noNetwork")
}

// TestRelay runs the relay as QEMU does (the connection on stdin and
// stdout, one socket) against an echo server that upper-cases a line and
// closes: bytes pass both ways and the end of the target reaches the guest.
func TestRelay(t *testing.T) {
	if _, err := osexec.LookPath("perl"); err != nil {
		t.Skip("perl not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				_, _ = io.WriteString(c, strings.ToUpper(line))
			}()
		}
	}()

	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	guest := os.NewFile(uintptr(fds[0]), "guest")
	child := os.NewFile(uintptr(fds[1]), "relay")
	defer guest.Close()

	argv := RelayArgv(ln.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := osexec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = child, child, os.Stderr
	require.NoError(t, cmd.Start())
	child.Close()

	_, err = io.WriteString(guest, "hello relay\n")
	require.NoError(t, err)
	got, err := io.ReadAll(guest)
	require.NoError(t, err, "the target's close reaches the guest as EOF")
	assert.Equal(t, "HELLO RELAY\n", string(got))
	guest.Close()
	require.NoError(t, cmd.Wait())
}

func TestRelayCommandQuoting(t *testing.T) {
	c := RelayCommand("127.0.0.1:5")
	assert.True(t, strings.HasPrefix(c, "perl -e '"), c)
	assert.True(t, strings.HasSuffix(c, "' 127.0.0.1:5"), c)
	assert.False(t, slices.Contains([]rune(relayScript), '\''), "the script is single-quoted for g_shell_parse_argv")
}
