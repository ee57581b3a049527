package sshx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Sentinel errors callers branch on.
var (
	// ErrHostKeyMismatch: the server presented a host key other than the
	// pinned one. Never retried.
	ErrHostKeyMismatch = errors.New("ssh host key mismatch")
	// ErrAuthFailed: the server refused the client key. Never retried.
	ErrAuthFailed = errors.New("ssh authentication failed")
	// ErrConnectionLost: the connection died (keepalive failed, peer closed).
	ErrConnectionLost = errors.New("ssh connection lost")
	// ErrClosed: the client was closed by its owner.
	ErrClosed = errors.New("ssh client closed")
)

// Options tune dialing and the connection. The zero value is usable.
type Options struct {
	// Logger receives debug lines (attempts, keepalive); default silent.
	Logger *slog.Logger
	// ConnectTimeout bounds one attempt until the server's first bytes
	// (TCP connect + version banner). Short, so an attempt against a guest
	// whose network is not up yet does not stall readiness. Default 3s.
	ConnectTimeout time.Duration
	// HandshakeTimeout bounds the rest of the handshake once the server has
	// spoken (key exchange and auth are slow in a busy TCG guest). Default 30s.
	HandshakeTimeout time.Duration
	// RetryInterval is the pause between WaitDial attempts. Default 200ms.
	RetryInterval time.Duration
	// KeepaliveInterval between keepalive@openssh.com requests. Default 5s;
	// negative disables the keepalive.
	KeepaliveInterval time.Duration
	// KeepaliveTimeout: a keepalive without any reply for this long marks
	// the connection dead (a frozen guest). Default 60s: long enough for a
	// guest paused by a QEMU savevm on a busy host.
	KeepaliveTimeout time.Duration
	// IdentityFile is the private key path shown in SSHCommand.
	IdentityFile string
	// KnownHostsFile receives the pinned host key on connect, for
	// SSHCommand. Default: known_hosts next to IdentityFile (when set).
	KnownHostsFile string
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 3 * time.Second
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 30 * time.Second
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = 200 * time.Millisecond
	}
	if o.KeepaliveInterval == 0 {
		o.KeepaliveInterval = 5 * time.Second
	}
	if o.KeepaliveTimeout <= 0 {
		o.KeepaliveTimeout = 60 * time.Second
	}
	if o.KnownHostsFile == "" && o.IdentityFile != "" {
		o.KnownHostsFile = filepath.Join(filepath.Dir(o.IdentityFile), "known_hosts")
	}
	return o
}

// IsPermanent reports whether a dial error will not go away by retrying:
// a host key mismatch or an authentication failure.
func IsPermanent(err error) bool {
	return errors.Is(err, ErrHostKeyMismatch) || errors.Is(err, ErrAuthFailed)
}

// pinnedCallback accepts exactly the pinned key and otherwise fails with
// ErrHostKeyMismatch naming both fingerprints.
func pinnedCallback(pinned ssh.PublicKey) ssh.HostKeyCallback {
	want := pinned.Marshal()
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		if bytes.Equal(key.Marshal(), want) {
			return nil
		}
		return fmt.Errorf("%w for %s: expected %s %s (pinned), got %s %s",
			ErrHostKeyMismatch, hostname,
			pinned.Type(), ssh.FingerprintSHA256(pinned),
			key.Type(), ssh.FingerprintSHA256(key))
	}
}

// hostKeyAlgorithms makes the server present the pinned key's type: without
// it x/crypto may negotiate another type (ECDSA first) and a correct server
// would look like a mismatch.
func hostKeyAlgorithms(pinned ssh.PublicKey) []string {
	switch pinned.Type() {
	case ssh.KeyAlgoRSA:
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	default:
		return []string{pinned.Type()}
	}
}

// Dial makes one connection attempt to addr (host:port) as user with the
// client key signer, accepting only the pinned hostKey.
func Dial(ctx context.Context, addr, user string, signer ssh.Signer, hostKey ssh.PublicKey, opts Options) (*Client, error) {
	if signer == nil || hostKey == nil {
		return nil, errors.New("sshx.Dial: signer and hostKey are required")
	}
	opts = opts.withDefaults()
	cfg := &ssh.ClientConfig{
		User:              user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   pinnedCallback(hostKey),
		HostKeyAlgorithms: hostKeyAlgorithms(hostKey),
	}

	d := net.Dialer{Timeout: opts.ConnectTimeout}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ssh dial %s: %w", addr, err)
	}
	conn := &bannerConn{Conn: raw, extend: opts.HandshakeTimeout}
	_ = raw.SetDeadline(time.Now().Add(opts.ConnectTimeout))

	// The handshake has no context: close the socket if ctx ends.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	stopped := stop()
	if err != nil {
		if !stopped && ctx.Err() != nil {
			return nil, fmt.Errorf("ssh handshake with %s: %w", addr, ctx.Err())
		}
		return nil, classify(addr, err)
	}
	if !stopped {
		sc.Close()
		return nil, fmt.Errorf("ssh handshake with %s: %w", addr, ctx.Err())
	}
	_ = raw.SetDeadline(time.Time{})
	c := newClient(ssh.NewClient(sc, chans, reqs), addr, user, hostKey, opts)
	if opts.KnownHostsFile != "" {
		if err := WriteKnownHosts(opts.KnownHostsFile, addr, hostKey); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func classify(addr string, err error) error {
	if errors.Is(err, ErrHostKeyMismatch) {
		return err
	}
	msg := err.Error()
	if strings.Contains(msg, "unable to authenticate") || strings.Contains(msg, "no supported methods remain") {
		return fmt.Errorf("%w to %s: %v", ErrAuthFailed, addr, err)
	}
	return fmt.Errorf("ssh handshake with %s: %w", addr, err)
}

// WaitDial dials until a connection succeeds, ctx ends, or the error is
// permanent (host key mismatch, auth failure: returned at once). Refused
// connections, resets and EOF during the handshake (sshd not up yet, or
// QEMU's port forward with nothing listening in the guest) are retried
// every opts.RetryInterval.
func WaitDial(ctx context.Context, addr, user string, signer ssh.Signer, hostKey ssh.PublicKey, opts Options) (*Client, error) {
	opts = opts.withDefaults()
	start := time.Now()
	var lastErr error
	for attempt := 1; ; attempt++ {
		c, err := Dial(ctx, addr, user, signer, hostKey, opts)
		if err == nil {
			opts.Logger.Debug("ssh connected", "addr", addr, "attempts", attempt, "after", time.Since(start))
			return c, nil
		}
		if IsPermanent(err) {
			return nil, err
		}
		if ctx.Err() != nil {
			if lastErr == nil {
				lastErr = err
			}
			return nil, fmt.Errorf("waiting for ssh on %s: %d attempts in %s, last error: %v: %w",
				addr, attempt, time.Since(start).Round(time.Millisecond), lastErr, context.Cause(ctx))
		}
		lastErr = err
		if attempt == 1 || attempt%25 == 0 {
			opts.Logger.Debug("ssh not ready", "addr", addr, "attempt", attempt, "err", err)
		}
		t := time.NewTimer(opts.RetryInterval)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// bannerConn extends the read deadline once the server has sent its first
// bytes: a short deadline catches a port with nothing behind it, a long one
// lets a slow guest finish the key exchange.
type bannerConn struct {
	net.Conn
	once   sync.Once
	extend time.Duration
}

func (b *bannerConn) Read(p []byte) (int, error) {
	n, err := b.Conn.Read(p)
	if n > 0 {
		b.once.Do(func() { _ = b.Conn.SetDeadline(time.Now().Add(b.extend)) })
	}
	return n, err
}
