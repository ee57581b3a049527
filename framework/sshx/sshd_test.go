package sshx

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework/qemu/qemutest"
)

// requireTool is the project's integration-test guard (qemutest):
// skip under -short; a missing tool skips, or fails when
// GUESTCATALOG_REQUIRE_TOOLS=1.
func requireTool(t testing.TB, tools ...string) { t.Helper(); qemutest.RequireTools(t, tools...) }

// testSSHD is a private OpenSSH server on 127.0.0.1 for one test, run as the
// current user with its own host key (made by NewHostKey, as the guest's
// would be) and an authorized_keys file holding the test's client key.
type testSSHD struct {
	Addr    string
	User    string
	HostKey *HostKey
	Client  *KeyPair
	Dir     string

	cmd    *osexec.Cmd
	mu     sync.Mutex
	stderr strings.Builder
}

func startSSHD(t *testing.T) *testSSHD {
	t.Helper()
	requireTool(t, "/usr/sbin/sshd", "ssh")
	dir := t.TempDir()
	hk, err := NewHostKey("test-host")
	require.NoError(t, err)
	kp, err := NewKeyPair(filepath.Join(dir, "client"), "test-client")
	require.NoError(t, err)
	hostKeyPath := filepath.Join(dir, "ssh_host_ed25519_key")
	require.NoError(t, os.WriteFile(hostKeyPath, []byte(hk.PrivatePEM), 0o600))
	authKeys := filepath.Join(dir, "authorized_keys")
	require.NoError(t, os.WriteFile(authKeys, []byte(kp.AuthorizedKey+"\n"), 0o600))
	// sshd refuses to start without its privilege separation directory.
	if _, err := os.Stat("/run/sshd"); err != nil && os.Geteuid() == 0 {
		require.NoError(t, os.MkdirAll("/run/sshd", 0o755))
	}

	port := freePort(t)
	cfg := filepath.Join(dir, "sshd_config")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`ListenAddress 127.0.0.1
Port %d
HostKey %s
AuthorizedKeysFile %s
PidFile none
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AcceptEnv none
LogLevel VERBOSE
`, port, hostKeyPath, authKeys)), 0o600))

	user := os.Getenv("USER")
	if u, err := osexec.Command("id", "-un").Output(); err == nil {
		user = strings.TrimSpace(string(u))
	}
	s := &testSSHD{Addr: fmt.Sprintf("127.0.0.1:%d", port), User: user, HostKey: hk, Client: kp, Dir: dir}
	s.cmd = osexec.Command("/usr/sbin/sshd", "-D", "-e", "-f", cfg, "-p", fmt.Sprint(port), "-h", hostKeyPath)
	// Own process group: killing it takes the per-connection children too.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	s.cmd.Stderr = pw
	require.NoError(t, s.cmd.Start())
	pw.Close()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.mu.Lock()
			s.stderr.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		s.Kill()
		_ = s.cmd.Wait()
		if t.Failed() {
			t.Logf("sshd log:\n%s", s.Log())
		}
	})
	// Ready when it accepts TCP connections.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not listen on %s: %v\n%s", s.Addr, err, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// Kill kills sshd and every per-connection child.
func (s *testSSHD) Kill() { s.Signal(syscall.SIGKILL) }

// Signal sends sig to sshd and all its descendants. Per-connection sshd
// processes call setsid(), so the process group does not reach them: walk
// the process tree instead.
func (s *testSSHD) Signal(sig syscall.Signal) {
	pids := append(descendants(s.cmd.Process.Pid), s.cmd.Process.Pid)
	for _, pid := range pids {
		_ = syscall.Kill(pid, sig)
	}
}

// descendants lists the descendants of pid from /proc (children first).
func descendants(pid int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may contain spaces; split after ')'.
		rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		parent[p] = pp
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for c, pp := range parent {
			if pp == p {
				walk(c)
				out = append(out, c)
			}
		}
	}
	walk(pid)
	return out
}

func (s *testSSHD) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

func (s *testSSHD) dial(t *testing.T, opts Options) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if opts.IdentityFile == "" {
		opts.IdentityFile = s.Client.PrivateKeyPath
	}
	c, err := WaitDial(ctx, s.Addr, s.User, s.Client.Signer, s.HostKey.PublicKey, opts)
	require.NoError(t, err, "sshd log:\n%s", s.Log())
	t.Cleanup(func() { c.Close() })
	return c
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func netListen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
