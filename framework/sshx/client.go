package sshx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/guestcatalog/guestcatalog/framework/exec"
)

// Client is an SSH connection to a guest. It implements exec.Runner; it is
// safe for concurrent use (one session per Run).
type Client struct {
	conn    *ssh.Client
	addr    string
	user    string
	hostKey ssh.PublicKey
	opts    Options

	done     chan struct{}
	mu       sync.Mutex
	deadErr  error
	deadOnce sync.Once
}

var _ exec.Runner = (*Client)(nil)

func newClient(conn *ssh.Client, addr, user string, hostKey ssh.PublicKey, opts Options) *Client {
	c := &Client{conn: conn, addr: addr, user: user, hostKey: hostKey, opts: opts, done: make(chan struct{})}
	go func() {
		err := conn.Wait()
		if err == nil {
			err = errors.New("connection closed by peer")
		}
		c.markDead(fmt.Errorf("%w: %v", ErrConnectionLost, err))
	}()
	if opts.KeepaliveInterval > 0 {
		go c.keepalive()
	}
	return c
}

// Conn is the underlying x/crypto client (port forwards, raw sessions).
func (c *Client) Conn() *ssh.Client { return c.conn }

// Addr is the host:port the client is connected to.
func (c *Client) Addr() string { return c.addr }

// User is the login user.
func (c *Client) User() string { return c.user }

// HostKey is the pinned (and verified) host key.
func (c *Client) HostKey() ssh.PublicKey { return c.hostKey }

// Done is closed when the connection is dead or closed; Err says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is nil while the connection is alive, then wraps ErrConnectionLost or
// ErrClosed.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadErr
}

// Close closes the connection. Idempotent.
func (c *Client) Close() error {
	c.markDead(ErrClosed)
	return nil
}

func (c *Client) markDead(err error) {
	c.deadOnce.Do(func() {
		c.mu.Lock()
		c.deadErr = err
		c.mu.Unlock()
		if !errors.Is(err, ErrClosed) {
			c.opts.Logger.Debug("ssh connection dead", "addr", c.addr, "err", err)
		}
		c.conn.Close()
		close(c.done)
	})
}

// keepalive sends keepalive@openssh.com every interval. Any reply (OpenSSH
// answers ok=false) means alive; only an error, or no reply within
// KeepaliveTimeout, means dead: then the client is closed, so that every
// pending and future Run fails at once instead of waiting out its timeout.
func (c *Client) keepalive() {
	t := time.NewTicker(c.opts.KeepaliveInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := c.conn.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		timer := time.NewTimer(c.opts.KeepaliveTimeout)
		select {
		case err := <-reply:
			timer.Stop()
			if err != nil {
				c.markDead(fmt.Errorf("%w: keepalive: %v", ErrConnectionLost, err))
				return
			}
		case <-timer.C:
			c.markDead(fmt.Errorf("%w: keepalive: no reply in %s", ErrConnectionLost, c.opts.KeepaliveTimeout))
			return
		case <-c.done:
			timer.Stop()
			return
		}
	}
}

// Run implements exec.Runner: the command runs through the login shell as
// cmd.ShellLine(), with separate stdout and stderr. A non-zero exit is a
// *exec.RunError with ExitCode (128+n when killed by signal n). When ctx ends
// the remote command is sent SIGKILL, the session is closed and Run returns
// the context error.
func (c *Client) Run(ctx context.Context, cmd exec.Cmd) (exec.Result, error) {
	line, err := cmd.ShellLine()
	if err != nil {
		return exec.Result{ExitCode: -1}, &exec.RunError{Cmd: cmd.String(), Result: exec.Result{ExitCode: -1}, Err: err}
	}
	stdout, stderr, outW, errW := exec.Capture(cmd)
	start := time.Now()
	code, err := c.session(ctx, line, cmd.Stdin, outW, errW)
	res := exec.Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: code, Duration: time.Since(start)}
	c.opts.Logger.Debug("ssh command", "cmd", line, "exit", code, "duration", res.Duration)
	if err != nil {
		return res, &exec.RunError{Cmd: line, Result: res, Err: err}
	}
	return res, nil
}

// session runs one command line and returns its exit code (-1 if unknown).
// setup functions run on the session before the command starts (a PTY
// request); an empty line starts the login shell instead of a command.
func (c *Client) session(ctx context.Context, line string, stdin io.Reader, stdout, stderr io.Writer, setup ...func(*ssh.Session) error) (int, error) {
	if err := c.Err(); err != nil {
		return -1, err
	}
	if err := ctx.Err(); err != nil {
		return -1, err
	}
	type opened struct {
		s   *ssh.Session
		err error
	}
	// NewSession waits for the server: do not let a frozen peer outlive ctx.
	openCh := make(chan opened, 1)
	go func() {
		s, err := c.conn.NewSession()
		openCh <- opened{s, err}
	}()
	var s *ssh.Session
	select {
	case o := <-openCh:
		if o.err != nil {
			if dead := c.Err(); dead != nil {
				return -1, dead
			}
			return -1, fmt.Errorf("opening ssh session: %w", o.err)
		}
		s = o.s
	case <-ctx.Done():
		go func() {
			if o := <-openCh; o.s != nil {
				o.s.Close()
			}
		}()
		return -1, context.Cause(ctx)
	case <-c.done:
		return -1, c.Err()
	}
	defer s.Close()

	s.Stdout, s.Stderr = stdout, stderr
	var stdinW io.WriteCloser
	if stdin != nil {
		// Copy stdin ourselves: x/crypto's Wait would otherwise wait for the
		// reader to reach EOF even after the command exited.
		w, err := s.StdinPipe()
		if err != nil {
			return -1, fmt.Errorf("ssh stdin: %w", err)
		}
		stdinW = w
	}
	for _, f := range setup {
		if err := f(s); err != nil {
			return -1, err
		}
	}
	start := s.Start
	if line == "" {
		start = func(string) error { return s.Shell() }
	}
	if err := start(line); err != nil {
		return -1, fmt.Errorf("starting ssh command: %w", err)
	}
	if stdinW != nil {
		go func() {
			_, _ = io.Copy(stdinW, stdin)
			_ = stdinW.Close()
		}()
	}
	waitCh := make(chan error, 1)
	go func() { waitCh <- s.Wait() }()

	var abort error
	select {
	case err := <-waitCh:
		return exitCode(err)
	case <-ctx.Done():
		abort = context.Cause(ctx)
		_ = s.Signal(ssh.SIGKILL)
	case <-c.done:
		abort = c.Err()
	}
	_ = s.Close()
	// Let the output copies finish (the buffers are safe to read anyway).
	select {
	case <-waitCh:
	case <-time.After(2 * time.Second):
	}
	return -1, abort
}

func exitCode(err error) (int, error) {
	if err == nil {
		return 0, nil
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		// x/crypto already maps a signal to 128+n.
		return ee.ExitStatus(), err
	}
	var missing *ssh.ExitMissingError
	if errors.As(err, &missing) {
		return -1, fmt.Errorf("remote command reported no exit status: %w", err)
	}
	return -1, err
}

// WriteKnownHosts writes a known_hosts file pinning key for addr, so that
// OpenSSH (`ssh -o UserKnownHostsFile=path`) verifies the same key.
func WriteKnownHosts(path, addr string, key ssh.PublicKey) error {
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, key) + "\n"
	if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
		return fmt.Errorf("writing known_hosts: %w", err)
	}
	return nil
}

// SSHCommand is an `ssh` command line a user can paste to log into the
// guest, pinned to the same host key (a known_hosts file holding only it,
// StrictHostKeyChecking=yes).
func (c *Client) SSHCommand() string {
	return SSHCommand(c.addr, c.user, c.opts.IdentityFile, c.opts.KnownHostsFile, c.hostKey)
}

// SSHCommand builds the pasteable command for addr. With an empty
// knownHostsFile host key checking is off (and the line says so).
func SSHCommand(addr, user, identityFile, knownHostsFile string, hostKey ssh.PublicKey) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, "22"
	}
	args := []string{"ssh"}
	if identityFile != "" {
		args = append(args, "-i", identityFile, "-o", "IdentitiesOnly=yes")
	}
	if port != "22" {
		args = append(args, "-p", port)
	}
	if knownHostsFile != "" {
		args = append(args, "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile="+knownHostsFile)
		if hostKey != nil {
			args = append(args, "-o", "HostKeyAlgorithms="+strings.Join(hostKeyAlgorithms(hostKey), ","))
		}
	} else {
		args = append(args, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null")
	}
	args = append(args, "-o", "LogLevel=ERROR", user+"@"+host)
	return exec.Join(args)
}

// Port is the TCP port of the connection address (0 if unknown).
func (c *Client) Port() int {
	_, p, err := net.SplitHostPort(c.addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}
