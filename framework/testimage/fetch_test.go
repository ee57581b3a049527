package testimage

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGoArch(t *testing.T) {
	assert.Equal(t, "amd64", GoArch("x86_64"))
	assert.Equal(t, "arm64", GoArch("aarch64"))
}

func TestCheckBusyboxRefusesAnotherArch(t *testing.T) {
	if _, err := os.Stat(DefaultBusybox); err != nil {
		t.Skip("no host busybox")
	}
	f, err := elf.Open(DefaultBusybox)
	require.NoError(t, err)
	host := "x86_64"
	if f.Machine == elf.EM_AARCH64 {
		host = "aarch64"
	}
	f.Close()
	other := map[string]string{"x86_64": "aarch64", "aarch64": "x86_64"}[host]
	err = checkBusybox(DefaultBusybox, other)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not "+other)
	assert.NoError(t, checkBusybox(DefaultBusybox, host))

	dyn := "/bin/ls"
	assert.ErrorContains(t, checkBusybox(dyn, host), "dynamically linked")
	assert.Error(t, checkBusybox(filepath.Join(t.TempDir(), "missing"), host))
}

// TestFetchBusyboxAarch64 fetches Debian's arm64 busybox-static (from the
// archive once, then from the cache) and makes an arm64 OCI image of it.
func TestFetchBusyboxAarch64(t *testing.T) {
	if testing.Short() {
		t.Skip("fetches from Debian's archive")
	}
	cache := os.Getenv("GUESTCATALOG_CACHE")
	if cache == "" {
		d, err := os.UserCacheDir()
		require.NoError(t, err)
		cache = filepath.Join(d, "guestcatalog")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	p, err := FetchBusybox(ctx, "aarch64", cache, "")
	require.NoError(t, err)
	require.NoError(t, checkBusybox(p, "aarch64"))
	var rootfs, oci bytes.Buffer
	require.NoError(t, RootfsTar(&rootfs, p))
	require.NoError(t, OCIArchiveFor(&oci, "localhost/busybox:latest", rootfs.Bytes(), []string{"/bin/sh"}, GoArch("aarch64")))
	assert.Contains(t, oci.String(), `"architecture":"arm64"`)
}
