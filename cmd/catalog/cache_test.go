package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework/caches"
	"github.com/guestcatalog/guestcatalog/framework/download"
)

func TestPrintCacheList(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	dl := func(d download.Entry) caches.Entry {
		return caches.Entry{Kind: caches.KindDownload, Name: d.URL, Path: d.Path, DiskUsage: d.DiskUsage, LastUsed: d.LastUsed, Detail: d.Digest, Download: &d}
	}
	entries := []caches.Entry{
		dl(download.Entry{URL: "https://x/debian.qcow2", Digest: "sha512:" + strings.Repeat("ab", 64), Verified: true, Size: 400 << 20,
			Path: "/c/downloads/k1/data", LastUsed: now.Add(-3 * time.Hour), Complete: true, DiskUsage: 400 << 20}),
		dl(download.Entry{URL: "https://x/latest.img.xz", Digest: "sha256:" + strings.Repeat("cd", 32), Size: 1 << 20,
			Path: "/c/downloads/k2/data.decompressed", LastUsed: now.Add(-40 * 24 * time.Hour), Complete: true, DiskUsage: 3 << 20}),
		dl(download.Entry{URL: "https://x/big.qcow2", PartialSize: 5 << 20, LastUsed: now.Add(-10 * time.Second), DiskUsage: 5 << 20}),
		{Kind: caches.KindImage, Name: "build:trixie 37d2eaccc84da5e4", Path: "/c/images/37d2eaccc84da5e4/disk.qcow2", DiskUsage: 300 << 20,
			LastUsed: now.Add(-2 * time.Hour), Detail: "sha256:" + strings.Repeat("ef", 32)},
		{Kind: caches.KindProvisioned, Name: "debian-13-docker", Path: "/c/provisioned/k/disk.qcow2", DiskUsage: 600 << 20,
			LastUsed: now.Add(-30 * time.Minute), Detail: "on build:trixie"},
	}
	var out bytes.Buffer
	require.NoError(t, printCacheList(&out, entries, outputTable, now))
	assert.Equal(t, `KIND         NAME                           SIZE             DIGEST                                  LAST USED  PATH
download     https://x/debian.qcow2         400 MiB          sha512:abababababab…                    3h ago     /c/downloads/k1/data
download     https://x/latest.img.xz        1.0 MiB          sha256:cdcdcdcdcdcd… (no digest given)  40d ago    /c/downloads/k2/data.decompressed
download     https://x/big.qcow2            partial 5.0 MiB  -                                       just now   -
image        build:trixie 37d2eaccc84da5e4  300 MiB          sha256:efefefefefef…                    2h ago     /c/images/37d2eaccc84da5e4/disk.qcow2
provisioned  debian-13-docker               600 MiB          on build:trixie                         30m ago    /c/provisioned/k/disk.qcow2
5 entries, 1.3 GiB on disk
`, out.String())

	out.Reset()
	require.NoError(t, printCacheList(&out, nil, outputJSON, now))
	assert.Equal(t, "[]\n", out.String())
	out.Reset()
	require.NoError(t, printCacheList(&out, nil, outputTable, now))
	assert.Equal(t, "the cache is empty\n", out.String())
}

func TestCacheCommands(t *testing.T) {
	img := []byte("image bytes")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(img) }))
	defer srv.Close()
	dir := t.TempDir()
	c, err := download.New(download.WithCacheDir(dir))
	require.NoError(t, err)
	_, err = c.Fetch(context.Background(), srv.URL+"/a.qcow2", digestOf(img))
	require.NoError(t, err)

	stdout, stderr, code := runCLI(t, "cache", "ls", "--json", "--cache-dir", dir)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, `"url": "`+srv.URL+`/a.qcow2"`)
	assert.Contains(t, stdout, `"kind": "download"`)

	stdout, stderr, code = runCLI(t, "cache", "verify", "--cache-dir", dir)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "1 verified, 0 corrupt (removed)")

	stdout, _, code = runCLI(t, "cache", "prune", "--cache-dir", dir)
	require.Equal(t, 0, code)
	assert.Equal(t, "removed 0 entries, 0 B\n", stdout, "used just now: kept")

	stdout, _, code = runCLI(t, "cache", "prune", "--all", "--dry-run", "--cache-dir", dir)
	require.Equal(t, 0, code)
	assert.Contains(t, stdout, "would remove download "+srv.URL+"/a.qcow2")

	stdout, _, code = runCLI(t, "cache", "prune", "--all", "--cache-dir", dir)
	require.Equal(t, 0, code)
	assert.Contains(t, stdout, "removed download "+srv.URL+"/a.qcow2")
	stdout, _, _ = runCLI(t, "cache", "ls", "--cache-dir", dir)
	assert.Equal(t, "the cache is empty\n", stdout)

	_, stderr, code = runCLI(t, "cache", "ls", "--kind", "overlay", "--cache-dir", dir)
	assert.Equal(t, 2, code, "a bad --kind is a usage error")
	assert.Contains(t, stderr, `--kind: unknown cache kind "overlay"`)

	_, stderr, code = runCLI(t, "cache", "prune", "--older-than", "0s", "--cache-dir", dir)
	assert.Equal(t, 2, code, "a bad --older-than is a usage error")
	assert.Contains(t, stderr, "--older-than must be positive (or use --all)")

	stdout, _, code = runCLI(t, "cache", "dir", "--cache-dir", dir)
	require.Equal(t, 0, code)
	assert.Equal(t, dir+"/downloads\n", stdout)
}
