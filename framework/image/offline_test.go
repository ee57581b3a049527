package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/download"
)

// Offline means "from the cache": pull on a connected machine (cache A),
// copy the cache (to B), and an offline Resolve uses the cached, verified
// download of a URL entry. With an empty cache the entry is unavailable
// (the template is SKIPPED), never downloaded.
func TestOfflineResolvesFromACopiedCache(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed")
	}
	ctx := context.Background()
	disk := diskFile(t, FormatQcow2) // a real qcow2 from qemu-img create
	data, err := os.ReadFile(disk)
	require.NoError(t, err)
	sum := sha256.Sum256(data)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	requests := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++
		http.ServeContent(w, r, "img.qcow2", fileTime(t, disk), bytes.NewReader(data))
	}))
	defer srv.Close()

	// A user template outside the repository, pinned by digest.
	dir := t.TempDir()
	tmpl := fmt.Sprintf(`apiVersion: guestcatalog.dev/v1alpha1
kind: Template
name: my-own-image
distro: {name: debian, release: "13", family: debian}
images:
  - arch: %s
    location: %s/img.qcow2
    digest: %s
`, host, srv.URL, digest)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "t.yaml"), []byte(tmpl), 0o644))
	c, err := catalog.Load(ctx, catalog.WithPaths(dir))
	require.NoError(t, err)
	tpl, err := c.Resolve("my-own-image")
	require.NoError(t, err)

	// Pull on the connected machine into cache A.
	cacheA := t.TempDir()
	dl, err := download.New(download.WithCacheDir(cacheA))
	require.NoError(t, err)
	r, err := dl.Fetch(ctx, tpl.Images[0].Location, digest)
	require.NoError(t, err)
	require.True(t, r.Verified)
	require.Equal(t, 1, requests)

	// Copy the cache to B (cp -a keeps the times) and go offline.
	cacheB := filepath.Join(t.TempDir(), "b")
	out, err := exec.Command("cp", "-a", cacheA, cacheB).CombinedOutput()
	require.NoError(t, err, string(out))
	srv.Close() // no network from here on

	a, err := Resolve(ctx, tpl, host, WithOffline(), WithCacheDir(cacheB))
	require.NoError(t, err)
	assert.Equal(t, StatusFromCache, a.Status)
	assert.Equal(t, digest, a.Digest)
	assert.True(t, a.Verified)
	assert.Equal(t, FormatQcow2, a.Format)
	assert.Equal(t, filepath.Join(cacheB, "downloads"), filepath.Dir(filepath.Dir(a.Disk)))

	// An empty cache: unavailable, with the reason; nothing fetched.
	_, err = Resolve(ctx, tpl, host, WithOffline(), WithCacheDir(t.TempDir()))
	require.ErrorIs(t, err, ErrNoImage)
	reason, ok := Unavailable(err)
	assert.True(t, ok, "%v", err)
	assert.Contains(t, reason, "offline")
	assert.Contains(t, reason, "not in the cache")
	assert.Equal(t, 1, requests)
}
