package download

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseDigest(t *testing.T) {
	h256 := strings.Repeat("ab", 32)
	h512 := strings.Repeat("cd", 64)
	d, err := ParseDigest("sha256:" + h256)
	require.NoError(t, err)
	assert.Equal(t, Digest{Algo: SHA256, Hex: h256}, d)
	assert.Equal(t, "sha256:"+h256, d.String())

	d, err = ParseDigest("SHA512:" + strings.ToUpper(h512))
	require.NoError(t, err)
	assert.Equal(t, "sha512:"+h512, d.String(), "normalised to lower case")

	for in, want := range map[string]string{
		"":                           "want algo:hex",
		h256:                         "want algo:hex",
		"md5:" + h256:                `unsupported algorithm "md5"`,
		"sha256:" + h256[:10]:        "sha256 needs 64 hex digits, got 10",
		"sha512:" + h256:             "sha512 needs 128 hex digits, got 64",
		"sha256:" + h256[:62] + "zz": "not hex",
	} {
		_, err := ParseDigest(in)
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), want, in)
	}
}

func TestMirrors(t *testing.T) {
	m, err := ParseMirrors("https://cloud.debian.org/images/=http://lan/debian/, https://dl.fedoraproject.org/=http://lan/fedora/",
		"https://cloud.debian.org/images/cloud/=http://lan2/cloud/")
	require.NoError(t, err)
	require.Len(t, m, 3)
	assert.Equal(t, "http://lan/debian/x.qcow2", Rewrite("https://cloud.debian.org/images/x.qcow2", m))
	assert.Equal(t, "http://lan2/cloud/trixie/x.qcow2", Rewrite("https://cloud.debian.org/images/cloud/trixie/x.qcow2", m), "longest prefix wins")
	assert.Equal(t, "https://example.org/x", Rewrite("https://example.org/x", m), "no match: unchanged")

	// Equal prefixes: the later one (a flag after the environment) wins.
	m, err = ParseMirrors("https://a/=http://env/", "https://a/=http://flag/")
	require.NoError(t, err)
	assert.Equal(t, "http://flag/x", Rewrite("https://a/x", m))

	empty, err := ParseMirrors("", " , ")
	require.NoError(t, err)
	assert.Empty(t, empty)

	for _, bad := range []string{"https://a/", "=http://b/", "https://a/=", "https://a/=ftp://b/", "https://a/=b"} {
		_, err := ParseMirrors(bad)
		assert.Error(t, err, bad)
	}
}

func TestFormatProgress(t *testing.T) {
	const MiB = 1 << 20
	assert.Equal(t, "downloading debian.qcow2: 312 MiB / 1.0 GiB (30%), 85 MiB/s, ETA 8s",
		formatProgress("debian.qcow2", 312*MiB, 1024*MiB, 85*MiB*2, 2*time.Second))
	assert.Equal(t, "downloading x: 5.0 MiB, 2.5 MiB/s", formatProgress("x", 5*MiB, -1, 5*MiB, 2*time.Second), "unknown size: no total, no ETA")
	assert.Equal(t, "downloading x: 0 B / 1.0 KiB (0%)", formatProgress("x", 0, 1024, 0, 0), "nothing moved yet: no rate")
	assert.Equal(t, "512 B", FormatBytes(512))
	assert.Equal(t, "1.5 KiB", FormatBytes(1536))
	assert.Equal(t, "12 GiB", FormatBytes(12<<30))
	assert.Equal(t, "1m12s", formatDuration(72*time.Second))
	assert.Equal(t, "400ms", formatDuration(400*time.Millisecond))
}

func TestLineProgressCadence(t *testing.T) {
	var out syncBuffer
	now := time.Unix(0, 0)
	p := &lineProgress{w: &out, name: "a.img", every: 5 * time.Second, now: func() time.Time { return now }}
	p.begin(1000, 0)
	now = now.Add(time.Second)
	p.update(50, 1000) // <10%, <5s: silent
	now = now.Add(time.Second)
	p.update(120, 1000) // crossed 10%
	now = now.Add(time.Second)
	p.update(150, 1000) // silent
	now = now.Add(5 * time.Second)
	p.update(160, 1000) // 5 s passed
	p.finish(1000, 0)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 3, out.String())
	assert.Equal(t, "downloading a.img: 120 B / 1000 B (12%), 60 B/s, ETA 15s", lines[0])
	assert.Contains(t, lines[1], "160 B / 1000 B (16%)")
	assert.Equal(t, "downloaded a.img: 1000 B in 8s (125 B/s)", lines[2])
}

func TestContentRangeAndRetryAfter(t *testing.T) {
	n, err := contentRangeStart("bytes 100-199/200")
	require.NoError(t, err)
	assert.EqualValues(t, 100, n)
	_, err = contentRangeStart("")
	assert.Error(t, err)
	_, err = contentRangeStart("items 1-2/3")
	assert.Error(t, err)

	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	assert.Equal(t, 7*time.Second, parseRetryAfter("7", now))
	assert.Equal(t, 90*time.Second, parseRetryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now))
	assert.Zero(t, parseRetryAfter("", now))
	assert.Zero(t, parseRetryAfter("soon", now))
	assert.Zero(t, parseRetryAfter("-3", now))
}

func TestCompressionOf(t *testing.T) {
	for in, want := range map[string][2]string{
		"/a/b/disk.qcow2.xz":  {"xz", "disk.qcow2"},
		"/disk.raw.GZ":        {"gz", "disk.raw"},
		"/x.img.zst":          {"zst", "x.img"},
		"/x.img.bz2":          {"bz2", "x.img"},
		"/x.qcow2":            {"", "x.qcow2"},
		"/debian-13.tar.xz":   {"", "debian-13.tar.xz"},
		"/latest/x.qcow2.xz/": {"xz", "x.qcow2"},
	} {
		f, n := compressionOf(in)
		assert.Equal(t, want, [2]string{f, n}, in)
	}
}

func TestSparseWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sparse")
	f, err := os.Create(path)
	require.NoError(t, err)
	data := make([]byte, 8<<20) // 8 MiB, data only in two places
	copy(data[1<<20:], payload(5000, 1))
	copy(data[6<<20:], payload(3, 2))
	sw := &sparseWriter{f: f}
	for off := 0; off < len(data); off += 300_000 { // odd chunk sizes
		_, err := sw.Write(data[off:min(off+300_000, len(data))])
		require.NoError(t, err)
	}
	require.NoError(t, sw.close(int64(len(data))))
	require.NoError(t, f.Close())
	assert.Equal(t, data, readFile(t, path))
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(path, &st))
	assert.Less(t, st.Blocks*512, int64(1<<20), "holes are not allocated")
}

func TestOptionsValidate(t *testing.T) {
	for name, o := range map[string]Option{
		"WithHTTPClient":       WithHTTPClient(nil),
		"WithRetry":            WithRetry(0, 0),
		"WithBackoff":          WithBackoff(time.Second, time.Millisecond),
		"WithProgressInterval": WithProgressInterval(0),
		"WithStallTimeout":     WithStallTimeout(-1),
		"WithMaxRetryAfter":    WithMaxRetryAfter(-1),
		"WithMirrors":          WithMirrors(Mirror{Prefix: "x"}),
	} {
		_, err := New(WithCacheDir(t.TempDir()), o)
		assert.ErrorContains(t, err, name, name)
	}
}

func TestCacheDirIsRequired(t *testing.T) {
	_, err := New()
	require.ErrorContains(t, err, "no directory")
	c, err := New(WithCacheDir("/xdg/guestcatalog"))
	require.NoError(t, err)
	assert.Equal(t, "/xdg/guestcatalog/downloads", c.Dir())
	assert.Len(t, Key("https://x"), 32)
	assert.Equal(t, filepath.Join(c.Dir(), Key("https://x")), c.EntryDir("https://x"))
}
