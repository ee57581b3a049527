package main

import (
	"context"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The fake upstream of ci/freshness: real-format metadata and small fake
// images, one directory per upstream host.
var freshnessTestdata = filepath.Join("..", "..", "ci", "freshness", "testdata")

func fakeUpstream(t *testing.T) string {
	t.Helper()
	files := http.FileServer(http.Dir(filepath.Join(freshnessTestdata, "upstream")))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rest, ok := strings.CutPrefix(r.URL.Path, "/download.fedoraproject.org/"); ok {
			http.Redirect(w, r, "/dl.fedoraproject.org/"+rest, http.StatusFound)
			return
		}
		r.URL.Path = strings.ReplaceAll(r.URL.Path, ":", "_") // stored without colons
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// copyFixtureTemplates copies the fixture templates whose path contains one
// of only (all when empty) into a temporary directory.
func copyFixtureTemplates(t *testing.T, only ...string) string {
	t.Helper()
	src := filepath.Join(freshnessTestdata, "templates")
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		keep := len(only) == 0
		for _, o := range only {
			keep = keep || strings.Contains(p, o)
		}
		if !keep {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	require.NoError(t, err)
	return dst
}

func TestImagesRefuseOffline(t *testing.T) {
	for _, sub := range []string{"check", "update"} {
		_, errOut, code := runCLI(t, "--offline", "images", sub)
		assert.Equal(t, 1, code)
		assert.Contains(t, errOut, "catalog images asks upstream servers (checksums, release metadata) and cannot run offline", sub)
	}
}

func TestImagesCheckCLI(t *testing.T) {
	base := fakeUpstream(t)

	good := copyFixtureTemplates(t, "ubuntu", "debian")
	out, errOut, code := runCLI(t, "--offline=false", "images", "check", "--dir", good, "--base-url", base)
	assert.Equal(t, 0, code, errOut)
	assert.Regexp(t, `(?m)^ubuntu-24\.04\s+aarch64\s+ok \(200\)\s+ok\s+ubuntu-24\.04-server-cloudimg-arm64\.img$`, out)
	assert.Contains(t, out, "6 image URLs: 4 ok, 0 failed, 2 warnings")

	all := copyFixtureTemplates(t)
	out, _, code = runCLI(t, "--offline=false", "images", "check", "--dir", all, "--base-url", base, "--json")
	assert.Equal(t, 1, code, "a dead URL and a changed digest fail the check")
	assert.Contains(t, out, `"digestStatus": "changed"`)
	assert.Contains(t, out, `"failed": true`)

	out, _, code = runCLI(t, "--offline=false", "images", "check", "--dir", all, "--base-url", base, "--markdown")
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "## Upstream images")

	_, errOut, code = runCLI(t, "--offline=false", "images", "check", "--json", "--markdown")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "--json and --markdown: choose one")
}

func TestImagesCheckMirrorFlag(t *testing.T) {
	base := fakeUpstream(t)
	good := copyFixtureTemplates(t, "ubuntu")
	// Only Ubuntu's host is mirrored: the check passes without --base-url.
	out, errOut, code := runCLI(t, "--offline=false", "--mirror", "https://cloud-images.ubuntu.com/="+base+"/cloud-images.ubuntu.com/",
		"images", "check", "--dir", good)
	assert.Equal(t, 0, code, errOut+out)
	assert.Contains(t, out, "3 image URLs: 2 ok, 0 failed, 1 warnings")
}

func TestImagesUpdateCLI(t *testing.T) {
	base := fakeUpstream(t)
	dir := copyFixtureTemplates(t, "debian")
	file := filepath.Join(dir, "images", "debian-13.yaml")
	before, err := os.ReadFile(file)
	require.NoError(t, err)

	out, errOut, code := runCLI(t, "--offline=false", "images", "update", "--dir", dir, "--base-url", base, "--dry-run")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "  + https://cloud.debian.org/images/cloud/trixie/20260802-2580/debian-13-genericcloud-amd64-20260802-2580.qcow2\n")
	assert.Contains(t, out, "2 image entries would be updated (dry run: nothing written), 0 already current, 0 skipped")
	after, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, string(before), string(after))

	out, errOut, code = runCLI(t, "--offline=false", "images", "update", "--dir", dir, "--base-url", base, "--distro", "debian")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "2 image entries updated, 0 already current, 0 skipped")
	after, err = os.ReadFile(file)
	require.NoError(t, err)
	assert.NotEqual(t, string(before), string(after))
	assert.Contains(t, string(after), "20260726-2551/debian-13-genericcloud-arm64-20260726-2551.qcow2")

	out, _, code = runCLI(t, "--offline=false", "images", "update", "--dir", dir, "--base-url", base)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "0 image entries updated, 2 already current, 0 skipped")

	_, errOut, code = runCLI(t, "--offline=false", "images", "update", "--dir", filepath.Join(dir, "nope"))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "nope not found: run from the repository root or pass --dir")

	_, errOut, code = runCLI(t, "--offline=false", "images", "update", "--dir", dir, "--distro", "gentoo")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, `distro "gentoo": images update knows almalinux, alpine, archlinux, debian, fedora, rocky, ubuntu`)
}

func TestCatalogImagesAreTheShippedFragments(t *testing.T) {
	a := &app{streams: IOStreams{ErrOut: io.Discard}, cacheDir: t.TempDir()}
	ims, err := a.catalogImages(context.Background())
	require.NoError(t, err)
	require.NotEmpty(t, ims)
	seen := map[string]bool{}
	for _, im := range ims {
		assert.NotContains(t, im.Name, "images/")
		assert.NotEmpty(t, im.Location)
		assert.True(t, im.Digest != "" || im.NoDigest != "", "%s %s: a digest or a reason", im.Name, im.Location)
		assert.False(t, seen[im.Location+im.Digest], "deduplicated: %s", im.Location)
		seen[im.Location+im.Digest] = true
	}
}
