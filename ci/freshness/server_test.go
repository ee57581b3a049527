package freshness

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// upstreamDir is a trimmed copy of the upstream trees, one directory per
// host, with real-format metadata and small fake images.
const upstreamDir = "testdata/upstream"

// fakeUpstream serves testdata/upstream on 127.0.0.1 as every upstream host
// at once (http://127.0.0.1:PORT/HOST/PATH), with two upstream habits:
// download.fedoraproject.org redirects to a mirror (dl.fedoraproject.org),
// and github.com answers HEAD with 405. Colons in paths are stored as "_"
// (Go module zips refuse ':' in file names).
type fakeUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	log  []string // "METHOD /host/path [range]"
	fail map[string]int
}

func newFakeUpstream(t *testing.T) *fakeUpstream {
	t.Helper()
	u := &fakeUpstream{fail: map[string]int{}}
	files := http.FileServer(http.Dir(upstreamDir))
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entry := r.Method + " " + r.URL.Path
		if rg := r.Header.Get("Range"); rg != "" {
			entry += " " + rg
		}
		u.mu.Lock()
		u.log = append(u.log, entry)
		status := u.fail[r.URL.Path]
		u.mu.Unlock()
		switch {
		case status != 0:
			http.Error(w, http.StatusText(status), status)
		case strings.HasPrefix(r.URL.Path, "/download.fedoraproject.org/"):
			http.Redirect(w, r, "/dl.fedoraproject.org/"+strings.TrimPrefix(r.URL.Path, "/download.fedoraproject.org/"), http.StatusFound)
		case strings.HasPrefix(r.URL.Path, "/github.com/") && r.Method == http.MethodHead:
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		default:
			r.URL.Path = strings.ReplaceAll(r.URL.Path, ":", "_")
			files.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(u.Close)
	return u
}

// failPath makes the server answer status for an upstream URL.
func (u *fakeUpstream) failPath(upstreamURL string, status int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.fail["/"+strings.TrimPrefix(strings.TrimPrefix(upstreamURL, "https://"), "http://")] = status
}

func (u *fakeUpstream) requests() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.log...)
}

// client talks to the fake upstream, with fast retries.
func (u *fakeUpstream) client() *Client {
	return &Client{BaseURL: u.URL, RetryWait: time.Millisecond}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestFixturesAreConsistent checks the fake upstream against itself: every
// checksum file and the simplestreams index list the real digests of the
// fake images they name, so the other tests compare real values.
func TestFixturesAreConsistent(t *testing.T) {
	digestOf := func(p, algo string) string {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		if algo == "sha512" {
			s := sha512.Sum512(b)
			return hex.EncodeToString(s[:])
		}
		s := sha256.Sum256(b)
		return hex.EncodeToString(s[:])
	}
	checked := 0
	err := filepath.WalkDir(upstreamDir, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		name := d.Name()
		if d.IsDir() || !(name == "SHA256SUMS" || name == "SHA512SUMS" || name == "CHECKSUM" ||
			strings.HasSuffix(name, "-CHECKSUM") || strings.HasSuffix(name, ".sha512") || strings.HasSuffix(name, ".SHA256")) {
			return nil
		}
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		sums := ParseSums(b)
		require.NotEmpty(t, sums, p)
		for file, algos := range sums {
			img := filepath.Join(filepath.Dir(p), file)
			if _, err := os.Stat(img); err != nil {
				continue // listed but not served (tarballs, other variants)
			}
			for algo, h := range algos {
				assert.Equal(t, digestOf(img, algo), h, "%s: %s of %s", p, algo, file)
				checked++
			}
		}
		return nil
	})
	require.NoError(t, err)

	b, err := os.ReadFile(filepath.Join(upstreamDir, "cloud-images.ubuntu.com/releases/streams/v1/com.ubuntu.cloud_released_download.json"))
	require.NoError(t, err)
	var ss simplestreams
	require.NoError(t, json.Unmarshal(b, &ss))
	for _, prod := range ss.Products {
		for _, v := range prod.Versions {
			it := v.Items["disk1.img"]
			// simplestreams paths are relative to releases/ with a server/ prefix.
			img := filepath.Join(upstreamDir, "cloud-images.ubuntu.com/releases", strings.TrimPrefix(it.Path, "server/releases/"))
			assert.Equal(t, digestOf(img, "sha256"), it.SHA256, it.Path)
			checked++
		}
	}
	assert.Greater(t, checked, 40)
}

// TestTemplateFixturesPinFakeImages: the fixture templates pin the digests of
// the fake images, except the two entries that are meant to fail.
func TestTemplateFixturesPinFakeImages(t *testing.T) {
	ims, err := ScanDir("testdata/templates")
	require.NoError(t, err)
	meantToDiffer := map[string]bool{
		"https://download.fedoraproject.org/pub/fedora/linux/releases/44/Cloud/x86_64/images/Fedora-Cloud-Base-Generic-44-1.7.x86_64.qcow2": true,
		"https://dl-cdn.alpinelinux.org/alpine/v3.23/releases/cloud/nocloud_alpine-3.23.4-aarch64-uefi-cloudinit-r0.qcow2":                  true,
	}
	for _, im := range ims {
		if !im.Pinned() || meantToDiffer[im.Location] {
			continue
		}
		rel := strings.TrimPrefix(im.Location, "https://")
		rel = strings.Replace(rel, "download.fedoraproject.org", "dl.fedoraproject.org", 1)
		b, err := os.ReadFile(filepath.Join(upstreamDir, filepath.FromSlash(rel)))
		require.NoError(t, err, im.Location)
		algo, want, _ := strings.Cut(im.Digest, ":")
		var got string
		if algo == "sha512" {
			s := sha512.Sum512(b)
			got = hex.EncodeToString(s[:])
		} else {
			s := sha256.Sum256(b)
			got = hex.EncodeToString(s[:])
		}
		assert.Equal(t, want, got, "%s:%d %s", im.File, im.Line, path.Base(im.Location))
	}
}

func writeFileT(t *testing.T, p, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
}
