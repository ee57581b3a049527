package machine

import (
	"context"
	"github.com/guestcatalog/guestcatalog/framework/config"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/image"
	"github.com/guestcatalog/guestcatalog/framework/qemu/qemutest"
)

// requireTool is the project's integration-test guard (qemutest):
// skip under -short; a missing tool skips, or fails when
// GUESTCATALOG_REQUIRE_TOOLS=1.
func requireTool(t testing.TB, tools ...string) { t.Helper(); qemutest.RequireTools(t, tools...) }

// debianImage returns the locally built Debian 13 image of the debian-13
// template, as the framework gets it offline (framework/image: built once,
// then from the cache: $GUESTCATALOG_CACHE or ~/.cache/guestcatalog).
func debianImage(t testing.TB) Image {
	t.Helper()
	requireTool(t, "qemu-system-x86_64", "qemu-img", "mmdebstrap", "mkfs.ext4")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	a, err := image.Resolve(ctx, debianTemplate(t), catalog.ArchX8664, image.WithOffline(), image.WithProgress(testWriter{t}), image.WithCacheDir(testCacheDir(t)))
	require.NoError(t, err)
	entry := a.Entry
	return Image{Disk: a.Disk, Format: a.Format, Kernel: a.Kernel, Initrd: a.Initrd, Append: a.Append, Firmware: a.Firmware, Entry: &entry}
}

// testCacheDir is the cache the integration tests share with the CLI
// ($GUESTCATALOG_CACHE, else the user's cache dir), so the Debian image is
// built once per machine.
func testCacheDir(t testing.TB) string {
	t.Helper()
	d, err := config.DefaultCacheDir(os.LookupEnv)
	require.NoError(t, err)
	return d
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}

func TestIntegrationResolveDebianImage(t *testing.T) {
	img := debianImage(t)
	t.Logf("image: %+v", img)
	require.NotEmpty(t, img.Kernel, "the local build boots by direct kernel boot")
}

// newTestLogger logs to t.Log.
func newTestLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// artifactsDir is $ARTIFACTS/<test name> when ARTIFACTS is set (kept for
// inspection), else a temporary directory.
func artifactsDir(t testing.TB) string {
	if root := os.Getenv("ARTIFACTS"); root != "" {
		dir := filepath.Join(root, strings.ReplaceAll(t.Name(), "/", "_"))
		require.NoError(t, os.MkdirAll(dir, 0o755))
		return dir
	}
	return t.TempDir()
}
