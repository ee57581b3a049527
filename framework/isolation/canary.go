package isolation

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Canaries are the host-side secrets of one run: a random token written to
// a host file outside every mount, served by a TCP listener on the host's
// 127.0.0.1, and (set by the caller, a test process) in the host process's
// environment under EnvName. A guest that can read any of them has reached
// something it should not.
type Canaries struct {
	// Token is random, 32 hex digits: it appears nowhere by chance.
	Token string
	// Dir is a host directory outside every mount; File holds the token.
	Dir, File string
	// Port is the loopback listener's port on 127.0.0.1; it answers every
	// connection with the token.
	Port int
	// EnvName is the variable the caller sets to the token in the test
	// process (os.Setenv), before the guest starts.
	EnvName string

	ln   net.Listener
	wg   sync.WaitGroup
	once sync.Once
}

// NewCanaries makes the canaries. mountDirs are the host directories of
// every mount: the canary directory must be outside each of them.
func NewCanaries(mountDirs []string) (*Canaries, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	token := hex.EncodeToString(b[:])
	dir, err := os.MkdirTemp("", "guestcatalog-canary-")
	if err != nil {
		return nil, fmt.Errorf("isolation: canary dir: %w", err)
	}
	for _, m := range mountDirs {
		if within(dir, m) || within(m, dir) {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("isolation: canary dir %s overlaps mount %s: choose mounts outside %s", dir, m, os.TempDir())
		}
	}
	c := &Canaries{Token: token, Dir: dir, File: filepath.Join(dir, "token"), EnvName: "GUESTCATALOG_CANARY_" + strings.ToUpper(token[:8])}
	if err := os.WriteFile(c.File, []byte(token+"\n"), 0o644); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("isolation: canary file: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("isolation: canary listener: %w", err)
	}
	c.ln = ln
	c.Port = ln.Addr().(*net.TCPAddr).Port
	c.wg.Add(1)
	go c.serve()
	return c, nil
}

func (c *Canaries) serve() {
	defer c.wg.Done()
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			return
		}
		_, _ = conn.Write([]byte(c.Token + "\n"))
		_ = conn.Close()
	}
}

// Close stops the listener and removes the canary directory.
func (c *Canaries) Close() error {
	var err error
	c.once.Do(func() {
		err = c.ln.Close()
		c.wg.Wait()
		err = errors.Join(err, os.RemoveAll(c.Dir))
	})
	return err
}

// within says whether p is dir or below it.
func within(p, dir string) bool {
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(p))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}
