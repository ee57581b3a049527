package imagebuild

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
)

// requireBuilder skips an integration test under -short, or when the build
// tools (or root) are missing, unless GUESTCATALOG_REQUIRE_TOOLS=1 (CI),
// where a missing tool fails the test.
func requireBuilder(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: builds an image with mmdebstrap (skipped with -short)")
	}
	_, err := CheckTools()
	if err == nil && os.Geteuid() != 0 {
		err = ErrNeedRoot
	}
	if err != nil {
		if os.Getenv("GUESTCATALOG_REQUIRE_TOOLS") == "1" {
			t.Fatalf("GUESTCATALOG_REQUIRE_TOOLS=1: %v", err)
		}
		t.Skipf("cannot build images here: %v", err)
	}
}

// lineWriter sends output lines to t.Log.
type lineWriter struct{ t testing.TB }

func (w lineWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// smallRecipe is the builder's base only (kernel, systemd, cloud-init,
// OpenSSH) on bookworm, plus one package to bake.
var smallRecipe = catalog.BuildRecipe{Suite: "bookworm", Packages: []string{"less"}, Bake: true}

func TestIntegrationBuildSmallImage(t *testing.T) {
	requireBuilder(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cache := t.TempDir()

	start := time.Now()
	a, err := Build(ctx, smallRecipe, []string{"busybox"}, WithCacheDir(cache), WithOutput(lineWriter{t}))
	require.NoError(t, err)
	cold := time.Since(start)
	t.Logf("cold build: %s, disk %s", cold, HumanBytes(a.Meta.Sizes.Disk))
	assert.Equal(t, StatusBuilt, a.Status)
	assert.Equal(t, EntryDir(cache, a.Key), a.Dir)
	assert.Contains(t, a.Append, "root=LABEL=root")
	assert.Regexp(t, `^sha256:[0-9a-f]{64}$`, a.Digest)

	// The disk is a qcow2 whose virtual size is the filesystem's.
	out, err := exec.Command("qemu-img", "info", "--output=json", a.Disk).Output()
	require.NoError(t, err)
	var info struct {
		Format      string `json:"format"`
		VirtualSize int64  `json:"virtual-size"`
	}
	require.NoError(t, json.Unmarshal(out, &info))
	assert.Equal(t, "qcow2", info.Format)
	assert.Equal(t, a.VirtualSize, info.VirtualSize)

	// The filesystem is clean, labelled root, and holds what the
	// customization wrote.
	raw := filepath.Join(t.TempDir(), "disk.raw")
	require.NoError(t, exec.Command("qemu-img", "convert", "-O", "raw", a.Disk, raw).Run())
	e2fsck, err := LookTool("e2fsck")
	require.NoError(t, err)
	fsck, err := exec.Command(e2fsck, "-fn", raw).CombinedOutput()
	require.NoError(t, err, string(fsck))
	dumpe2fs, err := LookTool("dumpe2fs")
	require.NoError(t, err)
	sb, err := exec.Command(dumpe2fs, "-h", raw).Output()
	require.NoError(t, err)
	assert.Regexp(t, `Filesystem volume name:\s+root\n`, string(sb))
	debugfs, err := LookTool("debugfs")
	require.NoError(t, err)
	cat := func(path string) string {
		out, err := exec.Command(debugfs, "-R", "cat "+path, raw).Output()
		require.NoError(t, err)
		return string(out)
	}
	assert.Contains(t, cat("/etc/cloud/cloud.cfg.d/90-guestcatalog.cfg"), "datasource_list: [NoCloud, None]")
	assert.Contains(t, cat("/etc/fstab"), "LABEL=root / ext4")
	ls, err := exec.Command(debugfs, "-R", "ls -l /etc/ssh", raw).Output()
	require.NoError(t, err)
	assert.NotContains(t, string(ls), "ssh_host_", "build-time host keys must not ship")
	ls, err = exec.Command(debugfs, "-R", "ls /usr/bin", raw).Output()
	require.NoError(t, err)
	assert.Contains(t, string(ls), "busybox", "baked extra package")
	assert.Contains(t, string(ls), "less", "recipe package")

	// Kernel and initrd for direct kernel boot, provenance beside them.
	for _, p := range []string{a.Kernel, a.Initrd} {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		assert.Greater(t, fi.Size(), int64(1<<20), p)
	}
	assert.Contains(t, a.Meta.Kernel, "cloud-amd64")
	assert.Contains(t, a.Meta.BootDrivers, "virtio_blk: module in initrd")
	names := map[string]string{}
	for _, p := range a.Meta.Installed {
		names[p.Name] = p.Version
	}
	for _, p := range []string{"cloud-init", "openssh-server", "systemd", "busybox", "less", "e2fsprogs", "dbus"} {
		assert.NotEmpty(t, names[p], "package %s installed", p)
	}
	mb, err := os.ReadFile(filepath.Join(a.Dir, MetaFile))
	require.NoError(t, err)
	assert.Contains(t, string(mb), `"suite": "bookworm"`)

	// Nothing else is left in the cache: no temporary dir, no root dir.
	entries, err := os.ReadDir(filepath.Join(cache, "images"))
	require.NoError(t, err)
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	assert.ElementsMatch(t, []string{a.Key, a.Key + ".lock"}, left)
	files, err := os.ReadDir(a.Dir)
	require.NoError(t, err)
	left = nil
	for _, e := range files {
		left = append(left, e.Name())
	}
	assert.ElementsMatch(t, []string{DiskFile, KernelFile, InitrdFile, MetaFile}, left)

	// The kernel finds the root filesystem by its label and runs a program
	// from it: init=/bin/true exits, the kernel panics "Attempted to kill
	// init" and, with panic=-1 and -no-reboot, QEMU exits.
	bootSmoke(t, ctx, a)

	// The same recipe again is a cache hit, and fast.
	var buf bytes.Buffer
	start = time.Now()
	b, err := Build(ctx, smallRecipe, []string{"busybox"}, WithCacheDir(cache), WithOutput(&buf))
	require.NoError(t, err)
	warm := time.Since(start)
	t.Logf("cached build: %s", warm)
	assert.Equal(t, StatusFromCache, b.Status)
	assert.Equal(t, a.Digest, b.Digest)
	assert.Less(t, warm, 2*time.Second)
	assert.Contains(t, buf.String(), "from cache")
}

func bootSmoke(t *testing.T, ctx context.Context, a *Artifact) {
	t.Helper()
	if catalog.HostArch() != catalog.ArchX8664 {
		t.Log("boot smoke test: x86_64 hosts only")
		return
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		if os.Getenv("GUESTCATALOG_REQUIRE_TOOLS") == "1" {
			t.Fatalf("GUESTCATALOG_REQUIRE_TOOLS=1: qemu-system-x86_64 (Debian package qemu-system-x86): %v", err)
		}
		t.Log("boot smoke test skipped: no qemu-system-x86_64")
		return
	}
	bctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(bctx, qemu, "-accel", "tcg", "-m", "512", "-nodefaults", "-nographic", "-no-reboot",
		"-serial", "stdio", "-kernel", a.Kernel, "-initrd", a.Initrd, "-append", a.Append+" init=/bin/true",
		"-drive", "file="+a.Disk+",if=virtio,format=qcow2,snapshot=on")
	out, err := cmd.CombinedOutput()
	console := string(out)
	if len(console) > 4000 {
		console = console[len(console)-4000:]
	}
	require.NoError(t, err, "QEMU: %s", console)
	t.Logf("kernel booted to the root filesystem and back in %s", time.Since(start).Round(100*time.Millisecond))
	assert.Regexp(t, `EXT4-fs \(vda\): mounted filesystem`, string(out), console)
	assert.Contains(t, string(out), "Attempted to kill init! exitcode=0x00000000", console)
}

// cancelOn cancels a context when a line containing match is written.
type cancelOn struct {
	t      testing.TB
	match  string
	cancel context.CancelFunc
}

func (w cancelOn) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	if strings.Contains(string(p), w.match) {
		w.cancel()
	}
	return len(p), nil
}

// Cancelling a build while mmdebstrap has /proc, /sys and /dev mounted in
// the root directory leaves nothing behind: no mount, no temporary
// directory, no cache entry.
func TestIntegrationCancelledBuildLeavesNothing(t *testing.T) {
	requireBuilder(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cache := t.TempDir()
	_, err := Build(ctx, catalog.BuildRecipe{Suite: "bookworm"}, nil, WithCacheDir(cache),
		WithOutput(cancelOn{t: t, match: "installing remaining packages", cancel: cancel}))
	require.ErrorIs(t, err, context.Canceled)

	mounts, err := mountsUnder(cache)
	require.NoError(t, err)
	assert.Empty(t, mounts)
	entries, err := os.ReadDir(filepath.Join(cache, "images"))
	require.NoError(t, err)
	for _, e := range entries {
		assert.True(t, strings.HasSuffix(e.Name(), ".lock"), "left behind: %s", e.Name())
	}
}
