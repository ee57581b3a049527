package artifacts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/download"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

const (
	hex64  = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	hex128 = hex64 + hex64
)

func TestParseChecksumFile(t *testing.T) {
	k3s := hex64 + "  k3s\n" + strings.Repeat("f", 64) + "  k3s-airgap-images-amd64.tar.zst\n"
	for _, tc := range []struct {
		name, data, file, want string
	}{
		{"sha256sum", k3s, "k3s", "sha256:" + hex64},
		{"binary mode star", hex64 + " *k0s-v1.35.1+k0s.0-amd64\n", "k0s-v1.35.1+k0s.0-amd64", "sha256:" + hex64},
		{"dot slash", hex64 + "  ./rke2.linux-amd64.tar.gz\n", "rke2.linux-amd64.tar.gz", "sha256:" + hex64},
		{"bsd", "SHA512 (tool) = " + hex128 + "\n", "tool", "sha512:" + hex128},
		{"single digest", hex64 + "\n", "", "sha256:" + hex64},
		{"single digest with a name", hex64 + "  cni-plugins.tgz\n", "", "sha256:" + hex64},
		{"upper case", strings.ToUpper(hex64) + "  x\n", "x", "sha256:" + hex64},
		{"comments and blanks", "# release\n\n" + hex64 + "  x\n", "x", "sha256:" + hex64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseChecksumFile([]byte(tc.data), tc.file)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	// Failing inputs, one per rule.
	_, err := ParseChecksumFile([]byte(k3s), "k3s-arm64")
	assert.ErrorIs(t, err, ErrNoChecksum)
	assert.EqualError(t, err, `no checksum for the file: "k3s-arm64" is not listed`)
	_, err = ParseChecksumFile([]byte(k3s), "")
	assert.EqualError(t, err, "no checksum for the file: the checksum file lists 2 digests and the artifact names no file to look up (checksumFile.name)")
	_, err = ParseChecksumFile([]byte(hex64+"  x\n"+strings.Repeat("e", 64)+"  x\n"), "x")
	assert.EqualError(t, err, `"x" is listed with different digests`)
	_, err = ParseChecksumFile([]byte("<html>not found</html>"), "x")
	assert.ErrorIs(t, err, ErrNoChecksum)
	_, err = ParseChecksumFile(make([]byte, maxChecksumFile+1), "x")
	assert.EqualError(t, err, "checksum file is 1048577 bytes, more than 1048576")
}

// server serves files by path and counts requests per path.
type server struct {
	*httptest.Server
	files map[string][]byte
	hits  map[string]*atomic.Int32
}

func newServer(t *testing.T, files map[string][]byte) *server {
	s := &server{files: files, hits: map[string]*atomic.Int32{}}
	for p := range files {
		s.hits[p] = &atomic.Int32{}
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := s.files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		s.hits[r.URL.Path].Add(1)
		_, _ = w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s
}

func needXorriso(t *testing.T) {
	if _, err := exec.LookPath("xorriso"); err != nil {
		t.Skip("xorriso not installed")
	}
}

func toolTemplate(base string, digest string) *catalog.Template {
	src := catalog.ArtifactSource{Arch: catalog.ArchX8664, URL: base + "/{{.param.version}}/tool"}
	if digest != "" {
		src.Digest = digest
	} else {
		src.ChecksumFile = &catalog.ChecksumFile{URL: base + "/{{.param.version}}/SHA256SUMS", Name: "tool"}
	}
	return &catalog.Template{Name: "t", Params: map[string]string{"version": "v1"},
		Artifacts: []catalog.Artifact{{Name: "tool", Sources: []catalog.ArtifactSource{src},
			Install: &catalog.ArtifactInstall{Path: "/usr/local/bin/tool"}}}}
}

func TestPrepareChecksumFileThenOffline(t *testing.T) {
	needXorriso(t)
	tool := []byte("#!/bin/sh\necho tool\n")
	srv := newServer(t, map[string][]byte{
		"/v1/tool":       tool,
		"/v1/SHA256SUMS": []byte(sha(tool) + "  tool\n" + hex64 + "  other\n"),
	})
	cache := t.TempDir()
	ctx := context.Background()
	set, err := Prepare(ctx, toolTemplate(srv.URL, ""), catalog.ArchX8664, WithCacheDir(cache))
	require.NoError(t, err)
	require.Len(t, set.Files, 1)
	f := set.Files[0]
	assert.Equal(t, "sha256:"+sha(tool), f.Digest)
	assert.Equal(t, srv.URL+"/v1/SHA256SUMS", f.DigestFrom)
	assert.Equal(t, srv.URL+"/v1/tool", f.URL)
	assert.Equal(t, "downloaded", f.Status)
	assert.Equal(t, "/usr/local/bin/tool", f.InstallPath)
	require.FileExists(t, set.Drive)
	assert.Equal(t, filepath.Join(cache, DrivesDir, DriveKey(set.Files)+".iso"), set.Drive)
	listing, err := exec.Command("xorriso", "-indev", set.Drive, "-pvd_info", "-ls", "/").CombinedOutput()
	require.NoError(t, err, string(listing))
	assert.Contains(t, string(listing), "Volume Id    : "+catalog.ArtifactsLabel)
	assert.Contains(t, string(listing), "'tool'")

	// Offline, with the server gone: the cached checksum file and the
	// cached verified file are enough; the drive is the same.
	srv.Close()
	set2, err := Prepare(ctx, toolTemplate(srv.URL, ""), catalog.ArchX8664, WithCacheDir(cache), WithOffline())
	require.NoError(t, err)
	assert.Equal(t, "from cache", set2.Files[0].Status)
	assert.Equal(t, set.Drive, set2.Drive)
}

func TestPrepareOfflineNotCached(t *testing.T) {
	tool := []byte("tool")
	srv := newServer(t, map[string][]byte{"/v1/tool": tool})
	_, err := Prepare(context.Background(), toolTemplate(srv.URL, "sha256:"+sha(tool)), catalog.ArchX8664,
		WithCacheDir(t.TempDir()), WithOffline())
	require.Error(t, err)
	assert.ErrorIs(t, err, download.ErrOffline)
	assert.Equal(t, int32(0), srv.hits["/v1/tool"].Load(), "offline: no request")
}

// TestPrepareDigestMismatch: a pinned digest the server's bytes do not
// match ends Prepare with ErrDigestMismatch, and nothing is cached as
// valid: a second Prepare downloads (and fails) again.
func TestPrepareDigestMismatch(t *testing.T) {
	srv := newServer(t, map[string][]byte{"/v1/tool": []byte("tampered")})
	cache := t.TempDir()
	tmpl := toolTemplate(srv.URL, "sha256:"+sha([]byte("the real tool")))
	_, err := Prepare(context.Background(), tmpl, catalog.ArchX8664, WithCacheDir(cache))
	require.Error(t, err)
	assert.ErrorIs(t, err, download.ErrDigestMismatch)
	assert.Contains(t, err.Error(), "template t artifacts[0] (tool)")
	_, err = Prepare(context.Background(), tmpl, catalog.ArchX8664, WithCacheDir(cache), WithOffline())
	assert.ErrorIs(t, err, download.ErrOffline, "nothing was cached as valid")
	entries, _ := os.ReadDir(filepath.Join(cache, DrivesDir))
	assert.Empty(t, entries, "no drive written")
}

// TestPrepareChecksumFileMismatch: the checksum file's digest is enforced
// like a pinned one.
func TestPrepareChecksumFileMismatch(t *testing.T) {
	srv := newServer(t, map[string][]byte{
		"/v1/tool":       []byte("tampered"),
		"/v1/SHA256SUMS": []byte(sha([]byte("the real tool")) + "  tool\n"),
	})
	_, err := Prepare(context.Background(), toolTemplate(srv.URL, ""), catalog.ArchX8664, WithCacheDir(t.TempDir()))
	assert.ErrorIs(t, err, download.ErrDigestMismatch)
}

func TestPrepareChecksumFileMissingName(t *testing.T) {
	srv := newServer(t, map[string][]byte{
		"/v1/tool":       []byte("tool"),
		"/v1/SHA256SUMS": []byte(hex64 + "  other\n"),
	})
	_, err := Prepare(context.Background(), toolTemplate(srv.URL, ""), catalog.ArchX8664, WithCacheDir(t.TempDir()))
	assert.ErrorIs(t, err, ErrNoChecksum)
	assert.Equal(t, int32(0), srv.hits["/v1/tool"].Load(), "no digest, no download")
}

func TestPrepareNoSourceForArch(t *testing.T) {
	_, err := Prepare(context.Background(), toolTemplate("http://127.0.0.1:1", hex64), catalog.ArchAarch64, WithCacheDir(t.TempDir()))
	assert.EqualError(t, err, "template t: artifacts[0] (tool): no source for aarch64")
}

func TestPrepareNoArtifacts(t *testing.T) {
	set, err := Prepare(context.Background(), &catalog.Template{Name: "t"}, catalog.ArchX8664)
	require.NoError(t, err)
	assert.Equal(t, "", set.Drive)
}

// TestPrepareMirror: a mirror serves the bytes; the URL recorded is the
// catalog's, the source the mirror's.
func TestPrepareMirror(t *testing.T) {
	needXorriso(t)
	tool := []byte("tool bytes")
	mirror := newServer(t, map[string][]byte{"/m/v1/tool": tool})
	set, err := Prepare(context.Background(), toolTemplate("https://releases.example.invalid", "sha256:"+sha(tool)), catalog.ArchX8664,
		WithCacheDir(t.TempDir()), WithMirrors([]string{fmt.Sprintf("https://releases.example.invalid/=%s/m/", mirror.URL)}))
	require.NoError(t, err)
	assert.Equal(t, "https://releases.example.invalid/v1/tool", set.Files[0].URL)
	assert.Equal(t, mirror.URL+"/m/v1/tool", set.Files[0].Source)
}

func TestWriteDriveErrors(t *testing.T) {
	p, err := WriteDrive(context.Background(), t.TempDir(), nil)
	require.NoError(t, err)
	assert.Empty(t, p)
	needXorriso(t)
	_, err = WriteDrive(context.Background(), t.TempDir(), []File{{Name: "../b", Path: "/x"}})
	assert.EqualError(t, err, `artifacts drive: "../b" cannot be a file name on the drive`)
	_, err = WriteDrive(context.Background(), t.TempDir(), []File{{Name: "a", Path: "/nonexistent/file"}})
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "artifacts drive: xorriso:"), err.Error())
	assert.False(t, errors.Is(err, context.Canceled))
}

func TestUnavailable(t *testing.T) {
	_, err := Prepare(context.Background(), toolTemplate("http://127.0.0.1:1", "sha256:"+hex64), catalog.ArchX8664,
		WithCacheDir(t.TempDir()), WithOffline())
	assert.True(t, Unavailable(err), "offline, not cached: %v", err)
	assert.False(t, Unavailable(fmt.Errorf("x: %w", &download.DigestMismatchError{})))
	assert.False(t, Unavailable(fmt.Errorf("x: %w", ErrNoChecksum)))
	assert.False(t, Unavailable(fmt.Errorf("x: %w", &download.HTTPError{StatusCode: 404})))
	assert.False(t, Unavailable(nil))
}

func TestPin(t *testing.T) {
	tmpl := toolTemplate("https://x", "")
	p := Pin(tmpl, catalog.ArchX8664, &Set{Files: []File{{Name: "tool", Digest: "sha256:" + hex64}}})
	assert.Equal(t, "sha256:"+hex64, p.Artifacts[0].Sources[0].Digest)
	assert.Nil(t, p.Artifacts[0].Sources[0].ChecksumFile)
	assert.NotNil(t, tmpl.Artifacts[0].Sources[0].ChecksumFile, "the caller's template is left as it was")
}

// TestWriteDriveDeterministic: the same files make the same bytes, whatever
// their times in the cache (a saved guest resumes with a drive written again).
func TestWriteDriveDeterministic(t *testing.T) {
	needXorriso(t)
	src := filepath.Join(t.TempDir(), "tool")
	require.NoError(t, os.WriteFile(src, []byte("tool"), 0o644))
	files := []File{{Name: "tool", Path: src, Digest: "sha256:" + sha([]byte("tool"))}}
	a, err := WriteDrive(context.Background(), t.TempDir(), files)
	require.NoError(t, err)
	later := time.Now().Add(time.Hour)
	require.NoError(t, os.Chtimes(src, later, later))
	b, err := WriteDrive(context.Background(), t.TempDir(), files)
	require.NoError(t, err)
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	assert.Equal(t, sha(ab), sha(bb))
	listing, err := exec.Command("xorriso", "-indev", b, "-pvd_info", "-lsl", "/").CombinedOutput()
	require.NoError(t, err, string(listing))
	assert.Contains(t, string(listing), "Volume Id    : "+catalog.ArtifactsLabel)
	assert.Contains(t, string(listing), "-r-xr-xr-x", "read-only and executable for everyone")
}

func TestCoveredByArtifacts(t *testing.T) {
	tmpl := toolTemplate("https://github.com/vendor/tool/releases/download", "")
	assert.True(t, CoveredByArtifacts(tmpl, catalog.ArchX8664, "https://github.com/vendor/tool/releases"))
	assert.True(t, CoveredByArtifacts(tmpl, catalog.ArchX8664, "https://github.com/vendor/tool/releases/"))
	// The failing inputs: another host, a longer name sharing the prefix,
	// an arch without sources.
	assert.False(t, CoveredByArtifacts(tmpl, catalog.ArchX8664, "https://registry.k8s.io/v2/"))
	assert.False(t, CoveredByArtifacts(tmpl, catalog.ArchX8664, "https://github.com/vendor/tool/rel"))
	assert.False(t, CoveredByArtifacts(tmpl, catalog.ArchAarch64, "https://github.com/vendor/tool/releases"))
}
