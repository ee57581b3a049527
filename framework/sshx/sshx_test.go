package sshx

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework/exec"
)

func TestKeyPairFiles(t *testing.T) {
	dir := t.TempDir()
	kp, err := NewKeyPair(dir, "run-1")
	require.NoError(t, err)
	st, err := os.Stat(kp.PrivateKeyPath)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	b, err := os.ReadFile(kp.PrivateKeyPath)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(b), "-----BEGIN OPENSSH PRIVATE KEY-----"))
	assert.True(t, strings.HasPrefix(kp.AuthorizedKey, "ssh-ed25519 "))
	assert.True(t, strings.HasSuffix(kp.AuthorizedKey, " run-1"))
	pub, err := ParsePublicKey(kp.AuthorizedKey)
	require.NoError(t, err)
	assert.Equal(t, kp.Signer.PublicKey().Marshal(), pub.Marshal())

	hk, err := NewHostKey("")
	require.NoError(t, err)
	assert.Contains(t, hk.PrivatePEM, "OPENSSH PRIVATE KEY")
	assert.True(t, strings.HasPrefix(hk.Fingerprint(), "SHA256:"))
	// ssh-keygen reads both keys back (OpenSSH format, as sshd needs).
	if path, err := osexec.LookPath("ssh-keygen"); err == nil {
		hkPath := filepath.Join(dir, "hk")
		require.NoError(t, os.WriteFile(hkPath, []byte(hk.PrivatePEM), 0o600))
		out, err := osexec.Command(path, "-y", "-f", hkPath).CombinedOutput()
		require.NoError(t, err, string(out))
		assert.Equal(t, hk.PublicLine, strings.TrimSpace(string(out)))
	}
}

func TestSSHCommandLine(t *testing.T) {
	hk, err := NewHostKey("")
	require.NoError(t, err)
	got := SSHCommand("127.0.0.1:2222", "debian", "/tmp/run dir/id_ed25519", "/tmp/run dir/known_hosts", hk.PublicKey)
	assert.Equal(t, "ssh -i '/tmp/run dir/id_ed25519' -o IdentitiesOnly=yes -p 2222 -o StrictHostKeyChecking=yes -o '"+
		"UserKnownHostsFile=/tmp/run dir/known_hosts' -o HostKeyAlgorithms=ssh-ed25519 -o LogLevel=ERROR debian@127.0.0.1", got)
}

func TestRunStreamsAndExitCode(t *testing.T) {
	s := startSSHD(t)
	c := s.dial(t, Options{})
	var tee bytes.Buffer
	res, err := c.Run(context.Background(), exec.Cmd{Script: "echo out; echo err >&2; exit 3", Stdout: &tee})
	var re *exec.RunError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 3, res.ExitCode)
	assert.Equal(t, "out\n", string(res.Stdout))
	assert.Equal(t, "err\n", string(res.Stderr))
	assert.Equal(t, "out\n", tee.String())
	assert.Contains(t, err.Error(), "exit code 3")
	assert.Contains(t, err.Error(), "stderr:\nerr")

	res, err = c.Run(context.Background(), exec.Command("sh", "-c", "kill -9 $$"))
	require.Error(t, err)
	assert.Equal(t, 137, res.ExitCode)

	out, err := exec.Output(context.Background(), c, "echo", "a b", "it's")
	require.NoError(t, err)
	assert.Equal(t, "a b it's", out)
}

func TestRunStdinAndEnv(t *testing.T) {
	s := startSSHD(t)
	c := s.dial(t, Options{})
	res, err := c.Run(context.Background(), exec.Cmd{Script: "cat; echo; wc -c", Stdin: strings.NewReader("hello")})
	require.NoError(t, err)
	// cat consumed everything; wc sees 0 bytes.
	assert.Equal(t, "hello\n0\n", string(res.Stdout))

	env := map[string]string{
		"PLAIN":  "x",
		"QUOTES": `it's "double" $HOME ` + "`id`",
		"LINES":  "a\nb\n",
		"EMPTY":  "",
	}
	res, err = c.Run(context.Background(), exec.Cmd{
		Script: `printf '%s|%s|%s|%s' "$PLAIN" "$QUOTES" "$LINES" "${EMPTY-unset}"`,
		Env:    env,
	})
	require.NoError(t, err)
	assert.Equal(t, "x|"+env["QUOTES"]+"|a\nb\n|", string(res.Stdout))

	// Sudo: through `sudo -n` (root here, but the path is exercised).
	if _, err := osexec.LookPath("sudo"); err == nil && s.User == "root" {
		out, err := exec.Output(context.Background(), c, "id", "-u")
		require.NoError(t, err)
		assert.Equal(t, "0", out)
		res, err = c.Run(context.Background(), exec.Cmd{Args: []string{"sh", "-c", `printf %s "$V"`}, Env: map[string]string{"V": "through sudo"}, Sudo: true})
		require.NoError(t, err)
		assert.Equal(t, "through sudo", string(res.Stdout))
	}
}

func TestUploadDownloadRoundTrip(t *testing.T) {
	s := startSSHD(t)
	c := s.dial(t, Options{})
	ctx := context.Background()
	data := make([]byte, 1<<20)
	_, err := rand.Read(data)
	require.NoError(t, err)
	remote := filepath.Join(s.Dir, "sub dir", "it's.bin")
	require.NoError(t, c.UploadBytes(ctx, data, remote, 0o640))
	st, err := os.Stat(remote)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), st.Mode().Perm())
	local, err := os.ReadFile(remote)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, local), "uploaded bytes differ")

	got, err := c.ReadFile(ctx, remote)
	require.NoError(t, err)
	assert.Equal(t, len(data), len(got))
	assert.True(t, bytes.Equal(data, got), "downloaded bytes differ")

	_, err = c.ReadFile(ctx, filepath.Join(s.Dir, "missing"))
	assert.ErrorContains(t, err, "No such file")
	entries, _ := os.ReadDir(filepath.Dir(remote))
	assert.Len(t, entries, 1, "no temporary file left behind")
}

func TestWrongHostKeyRefused(t *testing.T) {
	s := startSSHD(t)
	other, err := NewHostKey("")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err = WaitDial(ctx, s.Addr, s.User, s.Client.Signer, other.PublicKey, Options{})
	require.ErrorIs(t, err, ErrHostKeyMismatch)
	assert.True(t, IsPermanent(err))
	assert.Less(t, time.Since(start), 5*time.Second, "a mismatch must not be retried")
	assert.Contains(t, err.Error(), other.Fingerprint(), "names the expected key")
	assert.Contains(t, err.Error(), s.HostKey.Fingerprint(), "names the key the server showed")
}

func TestAuthFailureStopsWaiting(t *testing.T) {
	s := startSSHD(t)
	stranger, err := NewKeyPair("", "")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err = WaitDial(ctx, s.Addr, s.User, stranger.Signer, s.HostKey.PublicKey, Options{})
	require.ErrorIs(t, err, ErrAuthFailed)
	assert.Less(t, time.Since(start), 5*time.Second)
}

// TestWaitDialWaitsForServer: nothing listens at first (refused), then an
// sshd starts on that port and WaitDial connects.
func TestWaitDialWaitsForServer(t *testing.T) {
	s := startSSHD(t)
	s.Kill()
	_ = s.cmd.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
	_, err := WaitDial(ctx, s.Addr, s.User, s.Client.Signer, s.HostKey.PublicKey, Options{})
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "connection refused")
	assert.Contains(t, err.Error(), "attempts")

	// A listener that accepts and closes at once: like QEMU's port forward
	// with no sshd in the guest yet (EOF during the handshake) — retried.
	l, err := netListen(s.Addr)
	require.NoError(t, err)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	ctx, cancel = context.WithTimeout(context.Background(), 800*time.Millisecond)
	_, err = WaitDial(ctx, s.Addr, s.User, s.Client.Signer, s.HostKey.PublicKey, Options{})
	cancel()
	l.Close()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.False(t, IsPermanent(err))
}

func TestSSHCommandIsPinnedAndWorks(t *testing.T) {
	s := startSSHD(t)
	c := s.dial(t, Options{})
	line := c.SSHCommand()
	assert.Contains(t, line, "StrictHostKeyChecking=yes")
	kh, err := os.ReadFile(filepath.Join(filepath.Dir(s.Client.PrivateKeyPath), "known_hosts"))
	require.NoError(t, err)
	assert.Contains(t, string(kh), s.HostKey.PublicLine[:40])
	out, err := osexec.Command("sh", "-c", line+" -o BatchMode=yes echo pasted-ok").CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Equal(t, "pasted-ok", strings.TrimSpace(string(out)))

	// The same command against a server with another host key is refused by ssh.
	other, err := NewHostKey("")
	require.NoError(t, err)
	require.NoError(t, WriteKnownHosts(filepath.Join(s.Dir, "kh2"), s.Addr, other.PublicKey))
	bad := SSHCommand(s.Addr, s.User, s.Client.PrivateKeyPath, filepath.Join(s.Dir, "kh2"), other.PublicKey)
	out, err = osexec.Command("sh", "-c", bad+" -o BatchMode=yes echo should-not-run").CombinedOutput()
	require.Error(t, err)
	assert.NotContains(t, string(out), "should-not-run")
}

func TestKeepaliveDetectsKilledSSHD(t *testing.T) {
	s := startSSHD(t)
	c := s.dial(t, Options{KeepaliveInterval: 200 * time.Millisecond})
	require.NoError(t, c.Err())
	_, err := c.Run(context.Background(), exec.Command("true"))
	require.NoError(t, err)

	s.Kill()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("dead connection not detected")
	}
	assert.ErrorIs(t, c.Err(), ErrConnectionLost)
	start := time.Now()
	_, err = c.Run(context.Background(), exec.Command("true"))
	assert.ErrorIs(t, err, ErrConnectionLost)
	assert.Less(t, time.Since(start), time.Second, "runs on a dead client fail at once")
}

// TestKeepaliveDetectsFrozenPeer: sshd stopped (SIGSTOP) keeps the TCP
// connection open but never answers; the keepalive timeout declares it dead
// and a pending command fails instead of hanging.
func TestKeepaliveDetectsFrozenPeer(t *testing.T) {
	s := startSSHD(t)
	c := s.dial(t, Options{KeepaliveInterval: 200 * time.Millisecond, KeepaliveTimeout: time.Second})
	s.Signal(syscall.SIGSTOP)
	defer s.Signal(syscall.SIGCONT)
	errCh := make(chan error, 1)
	go func() {
		_, err := c.Run(context.Background(), exec.Command("sleep", "60"))
		errCh <- err
	}()
	select {
	case err := <-errCh:
		assert.ErrorIs(t, err, ErrConnectionLost)
	case <-time.After(10 * time.Second):
		t.Fatal("run on a frozen peer did not fail")
	}
	assert.ErrorIs(t, c.Err(), ErrConnectionLost)
	assert.Contains(t, c.Err().Error(), "no reply")
}

func TestContextCancelInterruptsCommand(t *testing.T) {
	s := startSSHD(t)
	c := s.dial(t, Options{})
	marker := filepath.Join(s.Dir, "still-running")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Run(ctx, exec.Cmd{Script: "sleep 30; touch " + exec.Quote(marker)})
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "err=%v", err)
	assert.Less(t, time.Since(start), 5*time.Second)
	// The connection is still usable.
	out, err := exec.Output(context.Background(), c, "echo", "alive")
	require.NoError(t, err)
	assert.Equal(t, "alive", out)
}

func TestClosedClient(t *testing.T) {
	s := startSSHD(t)
	c := s.dial(t, Options{})
	require.NoError(t, c.Close())
	require.NoError(t, c.Close())
	_, err := c.Run(context.Background(), exec.Command("true"))
	assert.ErrorIs(t, err, ErrClosed)
}
