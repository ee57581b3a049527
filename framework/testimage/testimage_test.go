package testimage

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeBusybox is a tiny "static ELF" so unit tests do not need the package.
func fakeBusybox(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "busybox")
	require.NoError(t, os.WriteFile(p, []byte("\x7fELF fake static binary"), 0o755))
	return p
}

func readTar(t *testing.T, b []byte) map[string]*tar.Header {
	t.Helper()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		out[h.Name] = h
	}
}

func TestRootfsTarIsDeterministicAndComplete(t *testing.T) {
	bb := fakeBusybox(t)
	var a, b bytes.Buffer
	require.NoError(t, RootfsTar(&a, bb))
	require.NoError(t, RootfsTar(&b, bb))
	assert.Equal(t, a.Bytes(), b.Bytes(), "same input must give identical bytes")
	entries := readTar(t, a.Bytes())
	assert.Contains(t, entries, "bin/busybox")
	assert.Equal(t, "busybox", entries["bin/sh"].Linkname)
	assert.Contains(t, entries, "var/www/index.html")
	assert.Equal(t, int64(0o1777), entries["tmp/"].Mode)
}

func TestRootfsTarRejectsDynamicBinary(t *testing.T) {
	p := filepath.Join(t.TempDir(), "busybox")
	require.NoError(t, os.WriteFile(p, []byte("\x7fELF...\x00/lib64/ld-linux-x86-64.so.2\x00"), 0o755))
	err := RootfsTar(io.Discard, p)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a statically linked")
	err = RootfsTar(io.Discard, filepath.Join(t.TempDir(), "missing"))
	assert.ErrorContains(t, err, "busybox-static")
}

func TestOCIArchiveDigestsMatch(t *testing.T) {
	var rootfs bytes.Buffer
	require.NoError(t, RootfsTar(&rootfs, fakeBusybox(t)))
	var out bytes.Buffer
	require.NoError(t, OCIArchive(&out, "localhost/busybox:latest", rootfs.Bytes(), []string{"/bin/sh"}))
	files := map[string][]byte{}
	tr := tar.NewReader(&out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		b, _ := io.ReadAll(tr)
		files[h.Name] = b
	}
	// Every blob is named by its own sha256.
	for name, b := range files {
		if filepath.Dir(name) == "blobs/sha256" && !strings.HasSuffix(name, "/") {
			s := sha256.Sum256(b)
			assert.Equal(t, filepath.Base(name), hex.EncodeToString(s[:]), name)
		}
	}
	var index struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	require.NoError(t, json.Unmarshal(files["index.json"], &index))
	require.Len(t, index.Manifests, 1)
	assert.Equal(t, "localhost/busybox:latest", index.Manifests[0].Annotations["io.containerd.image.name"])
	assert.Contains(t, files, "blobs/sha256/"+index.Manifests[0].Digest[len("sha256:"):])
	assert.Contains(t, files, "oci-layout")
}

// TestRealBusyboxRuns checks the real busybox-static binary packs and runs.
func TestRealBusyboxRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("integration: needs busybox-static")
	}
	if _, err := os.Stat(DefaultBusybox); err != nil {
		if os.Getenv("GUESTCATALOG_REQUIRE_TOOLS") == "1" {
			t.Fatalf("busybox-static is required: %v", err)
		}
		t.Skip("busybox-static not installed")
	}
	var rootfs bytes.Buffer
	require.NoError(t, RootfsTar(&rootfs, ""))
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "rootfs.tar")
	require.NoError(t, os.WriteFile(tarPath, rootfs.Bytes(), 0o644))
	root := filepath.Join(dir, "root")
	require.NoError(t, os.Mkdir(root, 0o755))
	out, err := exec.Command("tar", "-xf", tarPath, "-C", root).CombinedOutput()
	require.NoError(t, err, string(out))
	out, err = exec.Command(filepath.Join(root, "bin/sh"), "-c", "echo hi; cat "+filepath.Join(root, "var/www/index.html")).CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Equal(t, "hi\nhello from busybox\n", string(out))
}
