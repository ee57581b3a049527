package download

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework/exec"
)

// payload is n deterministic pseudo-random bytes.
func payload(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 1, 2, 3})
	r.Read(b)
	return b
}

func sha256Of(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func sha512Of(b []byte) string {
	s := sha512.Sum512(b)
	return "sha512:" + hex.EncodeToString(s[:])
}

// reqLog records what a test server was asked.
type reqLog struct {
	mu   sync.Mutex
	reqs []string // "GET", "GET bytes=100-", "HEAD"
}

func (l *reqLog) add(r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := r.Method
	if rg := r.Header.Get("Range"); rg != "" {
		s += " " + strings.TrimPrefix(rg, "bytes=")
	}
	l.reqs = append(l.reqs, s)
}

func (l *reqLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.reqs...)
}

func (l *reqLog) count(method string) int {
	n := 0
	for _, r := range l.all() {
		if r == method || strings.HasPrefix(r, method+" ") {
			n++
		}
	}
	return n
}

var modTime = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// serveBytes is a well-behaved server: ranges, HEAD, Last-Modified.
func serveBytes(data []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "f", modTime, bytes.NewReader(data))
	}
}

// server starts an httptest server on 127.0.0.1 logging every request.
func server(t *testing.T, h http.HandlerFunc) (*httptest.Server, *reqLog) {
	t.Helper()
	log := &reqLog{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add(r)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, log
}

// newCache is a cache in a temp dir with fast retries and lock polling.
func newCache(t testing.TB, opts ...Option) *Cache {
	t.Helper()
	base := []Option{
		WithCacheDir(t.TempDir()),
		WithBackoff(5*time.Millisecond, 20*time.Millisecond),
		withLockPoll(5 * time.Millisecond),
	}
	c, err := New(append(base, opts...)...)
	require.NoError(t, err)
	return c
}

// entryFiles lists the files of url's entry.
func entryFiles(t *testing.T, c *Cache, url string) []string {
	t.Helper()
	des, err := os.ReadDir(c.EntryDir(url))
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// syncBuffer is a goroutine-safe progress writer.
type syncBuffer = exec.Buffer

// requireNoLeaks fails if goroutines of grab or of this package (other
// than tests) outlive a Fetch.
func requireNoLeaks(t *testing.T) {
	t.Helper()
	var last string
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		last = ""
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "cavaliergopher/grab") ||
				(strings.Contains(g, "framework/download.") && !strings.Contains(g, "_test.go") && !strings.Contains(g, "testing.tRunner")) {
				last += g + "\n\n"
			}
		}
		if last == "" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("goroutines leaked:\n%s", last)
}

// abortAfter serves the first n bytes of data (announcing the full
// Content-Length), then drops the connection.
func abortAfter(w http.ResponseWriter, data []byte, n int) {
	w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	w.Header().Set("Accept-Ranges", "bytes")
	w.WriteHeader(http.StatusOK)
	w.Write(data[:n])
	w.(http.Flusher).Flush()
	panic(http.ErrAbortHandler)
}

func writePartial(t *testing.T, c *Cache, url string, b []byte) {
	t.Helper()
	dir := c.EntryDir(url)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, partName), b, 0o644))
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
