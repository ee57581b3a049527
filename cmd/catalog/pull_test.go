package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/config"
	"github.com/guestcatalog/guestcatalog/framework/download"
)

type fakeCatalog map[string]*catalog.Template

func (f fakeCatalog) Resolve(name string, _ ...catalog.ResolveOption) (*catalog.Template, error) {
	if t, ok := f[name]; ok {
		return t, nil
	}
	return nil, fmt.Errorf("%w %q", catalog.ErrUnknownTemplate, name)
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func TestPullTriesImagesInOrder(t *testing.T) {
	img := []byte("a qcow2 image, or so it says")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/good.qcow2" || r.URL.Path == "/latest.qcow2" {
			w.Write(img)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	cat := fakeCatalog{
		"two-urls": {Name: "two-urls", Images: []catalog.Image{
			{Arch: "aarch64", Location: srv.URL + "/arm.qcow2", Digest: digestOf(img)},
			{Arch: "x86_64", Location: srv.URL + "/gone.qcow2", Digest: digestOf(img)},
			{Arch: "x86_64", Location: srv.URL + "/good.qcow2", Digest: digestOf(img)},
		}},
		"nodigest": {Name: "nodigest", Images: []catalog.Image{
			{Arch: "x86_64", Location: srv.URL + "/latest.qcow2", NoDigest: "rolling"},
		}},
		"built": {Name: "built", Images: []catalog.Image{
			{Arch: "x86_64", Build: &catalog.BuildRecipe{Suite: "trixie"}},
		}},
		"arm-only": {Name: "arm-only", Images: []catalog.Image{{Arch: "aarch64", Location: srv.URL + "/arm.qcow2"}}},
	}
	cache, err := download.New(download.WithCacheDir(t.TempDir()), download.WithRetry(1, 0))
	require.NoError(t, err)
	var out bytes.Buffer
	err = runPull(context.Background(), &out, cache, cat, []string{"two-urls", "nodigest", "built"}, "x86_64")
	require.NoError(t, err, out.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 6, out.String())
	assert.Equal(t, "two-urls (x86_64): downloading "+srv.URL+"/gone.qcow2: server returned 404 Not Found", lines[0])
	assert.Equal(t, "two-urls (x86_64): downloaded "+srv.URL+"/good.qcow2 (28 B, verified "+digestOf(img)+")", lines[1])
	assert.Equal(t, "  -> "+cache.EntryDir(srv.URL+"/good.qcow2")+"/data", lines[2])
	assert.Equal(t, "nodigest (x86_64): downloaded "+srv.URL+"/latest.qcow2 (28 B, no digest published (rolling), computed "+digestOf(img)+")", lines[3])
	assert.Equal(t, "built (x86_64): nothing to download: its image is built locally (build:trixie); catalog verify builds it", lines[5])

	// Again: from the cache. Then failures give exit status 1.
	out.Reset()
	require.NoError(t, runPull(context.Background(), &out, cache, cat, []string{"two-urls"}, "x86_64"))
	assert.Contains(t, out.String(), "two-urls (x86_64): from cache "+srv.URL+"/good.qcow2")

	out.Reset()
	err = runPull(context.Background(), &out, cache, cat, []string{"arm-only", "nope"}, "x86_64")
	assert.Equal(t, exitError{code: 1}, err)
	assert.Equal(t, "arm-only (x86_64): FAILED: no image for x86_64 (it has images for [aarch64])\n"+
		"nope: FAILED: unknown template \"nope\"\n", out.String())
}

func TestPullOfflineMiss(t *testing.T) {
	cat := fakeCatalog{"x": {Name: "x", Images: []catalog.Image{
		{Arch: "x86_64", Location: "https://example.invalid/x.qcow2", Digest: digestOf(nil)},
		{Arch: "x86_64", Build: &catalog.BuildRecipe{Suite: "trixie"}},
	}}}
	cache, err := download.New(download.WithCacheDir(t.TempDir()), download.WithOffline())
	require.NoError(t, err)
	var out bytes.Buffer
	err = runPull(context.Background(), &out, cache, cat, []string{"x"}, "x86_64")
	assert.Equal(t, exitError{code: 1}, err)
	assert.Contains(t, out.String(), "x (x86_64): offline: https://example.invalid/x.qcow2 is not in the cache")
	assert.Contains(t, out.String(), "x (x86_64): FAILED: no image could be downloaded (a local build, build:trixie, remains: catalog verify uses it)")
}

func TestDownloadCacheFromGlobalFlags(t *testing.T) {
	dir := t.TempDir()
	a := &app{cacheDir: dir, mirrors: []string{"https://a/=http://flag/"},
		envCfg: config.Config{Mirrors: []string{"https://a/=http://env/", "https://b/=http://envb/"}}}
	c, err := a.newDownloadCache(os.Stderr, nil)
	require.NoError(t, err)
	assert.Equal(t, dir+"/downloads", c.Dir())

	a.mirrors = []string{"bad"}
	_, err = a.newDownloadCache(os.Stderr, nil)
	assert.ErrorContains(t, err, "--mirror: mirror \"bad\": want PREFIX=MIRROR")
}

// A mirror serving other bytes for the pinned image and for the rolling
// daily one: pull reports the mismatch, does not fall back to the noDigest
// entry, caches nothing and exits 1 (on main it cached the daily image and
// exited 0).
func TestPullDigestMismatchEndsTheTemplate(t *testing.T) {
	pinned := []byte("the image the catalog pinned")
	var gets []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets = append(gets, r.URL.Path)
		w.Write([]byte("tampered bytes from a mirror"))
	}))
	defer srv.Close()
	cat := fakeCatalog{"debian-13-docker": {Name: "debian-13-docker", Images: []catalog.Image{
		{Arch: "x86_64", Location: srv.URL + "/pinned.qcow2", Digest: digestOf(pinned)},
		{Arch: "x86_64", Location: srv.URL + "/daily/latest.qcow2", NoDigest: "rolling daily build"},
	}}}
	cache, err := download.New(download.WithCacheDir(t.TempDir()), download.WithRetry(1, 0))
	require.NoError(t, err)
	var out bytes.Buffer
	err = runPull(context.Background(), &out, cache, cat, []string{"debian-13-docker"}, "x86_64")
	assert.Equal(t, exitError{code: 1}, err, out.String())
	assert.Equal(t, []string{"/pinned.qcow2"}, gets, "no fall-back to the next entry")
	assert.Contains(t, out.String(), "debian-13-docker (x86_64): FAILED: downloading "+srv.URL+"/pinned.qcow2: digest mismatch")
	entries, err := cache.List()
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing cached")
}

// TestPullFetchesArtifacts: pull puts a template's artifacts in the cache
// (so that an offline verify has them); a wrong digest fails the template.
func TestPullFetchesArtifacts(t *testing.T) {
	tool := []byte("a vendor binary")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/tool":
			w.Write(tool)
		case "/v1/SUMS":
			fmt.Fprintf(w, "%s  tool\n", strings.TrimPrefix(digestOf(tool), "sha256:"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	withTool := func(name string, src catalog.ArtifactSource) *catalog.Template {
		return &catalog.Template{Name: name, Params: map[string]string{"v": "v1"},
			Images:    []catalog.Image{{Arch: "x86_64", Build: &catalog.BuildRecipe{Suite: "trixie"}}},
			Artifacts: []catalog.Artifact{{Name: "tool", Sources: []catalog.ArtifactSource{src}}}}
	}
	cat := fakeCatalog{
		"sums":   withTool("sums", catalog.ArtifactSource{Arch: "x86_64", URL: srv.URL + "/{{.param.v}}/tool", ChecksumFile: &catalog.ChecksumFile{URL: srv.URL + "/v1/SUMS", Name: "tool"}}),
		"wrong":  withTool("wrong", catalog.ArtifactSource{Arch: "x86_64", URL: srv.URL + "/v1/tool", Digest: digestOf([]byte("other"))}),
		"pinned": withTool("pinned", catalog.ArtifactSource{Arch: "x86_64", URL: srv.URL + "/v1/tool", Digest: digestOf(tool)}),
	}
	dir := t.TempDir()
	cache, err := download.New(download.WithCacheDir(dir), download.WithRetry(1, 0))
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, runPull(context.Background(), &out, cache, cat, []string{"sums"}, "x86_64"))
	assert.Contains(t, out.String(), "sums (x86_64): artifact tool "+digestOf(tool)+" (downloaded, digest from "+srv.URL+"/v1/SUMS)")

	out.Reset()
	err = runPull(context.Background(), &out, cache, cat, []string{"wrong"}, "x86_64")
	assert.Equal(t, exitError{code: 1}, err)
	assert.Contains(t, out.String(), "wrong (x86_64): FAILED: template wrong artifacts[0] (tool): ")
	assert.Contains(t, out.String(), "digest mismatch")

	// Offline, the cached artifact is enough.
	offline, err := download.New(download.WithCacheDir(dir), download.WithOffline())
	require.NoError(t, err)
	out.Reset()
	require.NoError(t, runPull(context.Background(), &out, offline, cat, []string{"pinned"}, "x86_64"))
	assert.Contains(t, out.String(), "pinned (x86_64): artifact tool "+digestOf(tool)+" (from cache, digest from catalog)")
}
