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

	"github.com/guestcatalog/guestcatalog/framework/download"
)

func TestPrintCacheList(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	entries := []download.Entry{
		{URL: "https://x/debian.qcow2", Digest: "sha512:" + strings.Repeat("ab", 64), Verified: true, Size: 400 << 20,
			Path: "/c/downloads/k1/data", LastUsed: now.Add(-3 * time.Hour), Complete: true, DiskUsage: 400 << 20},
		{URL: "https://x/latest.img.xz", Digest: "sha256:" + strings.Repeat("cd", 32), Size: 1 << 20,
			Path: "/c/downloads/k2/data.decompressed", LastUsed: now.Add(-40 * 24 * time.Hour), Complete: true, DiskUsage: 3 << 20},
		{URL: "https://x/big.qcow2", PartialSize: 5 << 20, LastUsed: now.Add(-10 * time.Second), DiskUsage: 5 << 20},
	}
	var out bytes.Buffer
	require.NoError(t, printCacheList(&out, entries, outputTable, now))
	assert.Equal(t, `URL                      SIZE             DIGEST                                  LAST USED  PATH
https://x/debian.qcow2   400 MiB          sha512:abababababab…                    3h ago     /c/downloads/k1/data
https://x/latest.img.xz  1.0 MiB          sha256:cdcdcdcdcdcd… (no digest given)  40d ago    /c/downloads/k2/data.decompressed
https://x/big.qcow2      partial 5.0 MiB  -                                       just now   -
3 entries, 408 MiB on disk
`, out.String())

	out.Reset()
	require.NoError(t, printCacheList(&out, nil, outputJSON, now))
	assert.Equal(t, "[]\n", out.String())
	out.Reset()
	require.NoError(t, printCacheList(&out, nil, outputTable, now))
	assert.Equal(t, "the download cache is empty\n", out.String())
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

	stdout, stderr, code = runCLI(t, "cache", "verify", "--cache-dir", dir)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "1 verified, 0 corrupt (removed)")

	stdout, _, code = runCLI(t, "cache", "prune", "--cache-dir", dir)
	require.Equal(t, 0, code)
	assert.Equal(t, "removed 0 entries, 0 B\n", stdout, "used just now: kept")

	stdout, _, code = runCLI(t, "cache", "prune", "--all", "--dry-run", "--cache-dir", dir)
	require.Equal(t, 0, code)
	assert.Contains(t, stdout, "would remove "+srv.URL+"/a.qcow2")

	stdout, _, code = runCLI(t, "cache", "prune", "--all", "--cache-dir", dir)
	require.Equal(t, 0, code)
	assert.Contains(t, stdout, "removed "+srv.URL+"/a.qcow2")
	stdout, _, _ = runCLI(t, "cache", "ls", "--cache-dir", dir)
	assert.Equal(t, "the download cache is empty\n", stdout)

	_, stderr, code = runCLI(t, "cache", "prune", "--older-than", "0s", "--cache-dir", dir)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "--older-than must be positive (or use --all)")

	stdout, _, code = runCLI(t, "cache", "dir", "--cache-dir", dir)
	require.Equal(t, 0, code)
	assert.Equal(t, dir+"/downloads\n", stdout)
}
