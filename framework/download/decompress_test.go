package download

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/ulikunitz/xz"
)

// diskLike is an image-like payload: data, a long run of zeros, data.
func diskLike() []byte {
	b := make([]byte, 3<<20)
	copy(b, payload(300_000, 40))
	copy(b[2<<20:], payload(100_000, 41))
	return b
}

func compress(t *testing.T, format string, raw []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch format {
	case "gz":
		w := gzip.NewWriter(&buf)
		_, err := w.Write(raw)
		require.NoError(t, err)
		require.NoError(t, w.Close())
	case "xz":
		w, err := xz.NewWriter(&buf)
		require.NoError(t, err)
		_, err = w.Write(raw)
		require.NoError(t, err)
		require.NoError(t, w.Close())
	case "zst":
		w, err := zstd.NewWriter(&buf)
		require.NoError(t, err)
		_, err = w.Write(raw)
		require.NoError(t, err)
		require.NoError(t, w.Close())
	case "bz2":
		// The standard library reads bzip2 but cannot write it.
		bin, err := exec.LookPath("bzip2")
		if err != nil {
			if os.Getenv("GUESTCATALOG_REQUIRE_TOOLS") == "1" {
				t.Fatalf("bzip2 not found (GUESTCATALOG_REQUIRE_TOOLS=1): apt-get install bzip2")
			}
			t.Skip("bzip2 not found: cannot make test data")
		}
		cmd := exec.Command(bin, "-c")
		cmd.Stdin = bytes.NewReader(raw)
		cmd.Stdout = &buf
		require.NoError(t, cmd.Run())
	}
	return buf.Bytes()
}

func TestDecompressFormats(t *testing.T) {
	raw := diskLike()
	for _, format := range []string{"gz", "xz", "zst", "bz2"} {
		t.Run(format, func(t *testing.T) {
			packed := compress(t, format, raw)
			srv, log := server(t, serveBytes(packed))
			c := newCache(t)
			url := srv.URL + "/cloud/disk.qcow2." + format
			r, err := c.Fetch(ctxT(t), url, sha256Of(packed))
			require.NoError(t, err)
			assert.Equal(t, Downloaded, r.Status)
			assert.Equal(t, format, r.Decompressed)
			assert.Equal(t, filepath.Join(c.EntryDir(url), "data.decompressed"), r.Path)
			assert.Equal(t, raw, readFile(t, r.Path), "Path is the decompressed image")
			assert.Equal(t, packed, readFile(t, r.DataPath), "the verified compressed file is kept")
			assert.Equal(t, sha256Of(packed), r.Digest, "the digest is of the published (compressed) file")
			assert.EqualValues(t, len(packed), r.Size)

			var m meta
			require.NoError(t, readJSON(filepath.Join(c.EntryDir(url), metaName), &m))
			require.NotNil(t, m.Decompressed)
			assert.Equal(t, "disk.qcow2", m.Decompressed.OriginalName)
			assert.Equal(t, sha256Of(raw), "sha256:"+m.Decompressed.SHA256)

			// A hit decompresses nothing and downloads nothing.
			before, _ := os.Stat(r.Path)
			r2, err := c.Fetch(ctxT(t), url, sha256Of(packed))
			require.NoError(t, err)
			assert.Equal(t, FromCache, r2.Status)
			after, _ := os.Stat(r2.Path)
			assert.Equal(t, before.ModTime(), after.ModTime())

			// A lost decompressed file is rebuilt from the verified data, offline.
			require.NoError(t, os.Remove(r.Path))
			r3, err := c.Fetch(ctxT(t), url, sha256Of(packed), WithOffline())
			require.NoError(t, err)
			assert.Equal(t, raw, readFile(t, r3.Path))

			// A damaged one is found by WithReverify and rebuilt.
			fi, _ := os.Stat(r3.Path)
			flipByte(t, r3.Path, 10)
			require.NoError(t, os.Chtimes(r3.Path, fi.ModTime(), fi.ModTime()))
			r4, err := c.Fetch(ctxT(t), url, sha256Of(packed), WithReverify(), WithOffline())
			require.NoError(t, err)
			assert.Equal(t, raw, readFile(t, r4.Path))
			assert.Len(t, log.all(), 1)

			// WithoutDecompress gives the published file.
			r5, err := c.Fetch(ctxT(t), url, sha256Of(packed), WithoutDecompress())
			require.NoError(t, err)
			assert.Equal(t, r.DataPath, r5.Path)
			assert.Empty(t, r5.Decompressed)
		})
	}
}

func TestDecompressCorruptStream(t *testing.T) {
	notXZ := payload(5000, 42)
	srv, _ := server(t, serveBytes(notXZ))
	c := newCache(t)
	url := srv.URL + "/x.img.xz"
	_, err := c.Fetch(ctxT(t), url, sha256Of(notXZ))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "decompressing "+url+" (xz)")
	assert.NoFileExists(t, filepath.Join(c.EntryDir(url), "data.decompressed"))
	assert.NoFileExists(t, filepath.Join(c.EntryDir(url), "data.decompressed.tmp"))
}
