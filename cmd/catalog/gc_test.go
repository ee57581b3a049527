package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/guestcatalog/guestcatalog/framework/qemu"
)

// staleRunDir makes a run dir whose owner (a reaped process) is gone.
func staleRunDir(t *testing.T, root string) string {
	t.Helper()
	c := exec.Command("true")
	require.NoError(t, c.Run())
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	require.NoError(t, err)
	dir := filepath.Join(root, "r123")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	b, err := json.Marshal(qemu.Owner{CreatedBy: qemu.CreatedBy, BootID: strings.TrimSpace(string(boot)), PID: c.Process.Pid, PIDStart: 1})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, qemu.OwnerFile), b, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "overlay.qcow2"), []byte("x"), 0o600))
	return dir
}

func TestGcCommand(t *testing.T) {
	root := t.TempDir()
	t.Setenv("GUESTCATALOG_CACHE", t.TempDir()) // never the shared cache
	stale := staleRunDir(t, root)
	live, err := qemu.NewRunDir(root, "live")
	require.NoError(t, err)
	defer live.Remove()

	out, _, code := runCLI(t, "gc", "--run-root", root, "--dry-run")
	require.Equal(t, 0, code)
	assert.Regexp(t, `^would remove `+stale+` \(owner pid \d+ is gone\)\n$`, out)
	assert.DirExists(t, stale)

	out, _, code = runCLI(t, "gc", "--run-root", root, "-v")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "removed "+stale+" (owner pid ")
	assert.Contains(t, out, "kept "+live.Path()+" (owner pid ")
	assert.NoDirExists(t, stale)
	assert.DirExists(t, live.Path())

	out, _, code = runCLI(t, "gc", "--run-root", root)
	require.Equal(t, 0, code)
	assert.Equal(t, "nothing to remove under "+root+" (1 run dir(s) in use or not ours)\n", out)

	out, _, code = runCLI(t, "gc", "--run-root", root, "--json")
	require.Equal(t, 0, code)
	var res qemu.GcResult
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	assert.Empty(t, res.Removed)
	require.Len(t, res.Kept, 1)
	assert.Equal(t, live.Path(), res.Kept[0].Dir)
}

// An image build killed mid-bootstrap left proc and dev mounted under
// <cache>/images/.tmp-*: gc detaches them (deepest first) and removes the
// directory without descending into the mounts (on main gc left it all).
func TestGcUnmountsInterruptedBuilds(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	cache := t.TempDir()
	tmp := filepath.Join(cache, "images", ".tmp-0123456789abcdef-99")
	hostDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(hostDir, "keep"), []byte("x"), 0o644))
	for _, d := range []string{"proc", "dev"} {
		require.NoError(t, os.MkdirAll(filepath.Join(tmp, d), 0o755))
	}
	if err := unix.Mount("proc", filepath.Join(tmp, "proc"), "proc", 0, ""); err != nil {
		t.Skipf("mounting proc: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(filepath.Join(tmp, "proc"), unix.MNT_DETACH) })
	require.NoError(t, unix.Mount(hostDir, filepath.Join(tmp, "dev"), "", unix.MS_BIND, ""))
	t.Cleanup(func() { _ = unix.Unmount(filepath.Join(tmp, "dev"), unix.MNT_DETACH) })

	out, stderr, code := runCLI(t, "gc", "--run-root", t.TempDir(), "--cache-dir", cache)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "removed interrupted build "+tmp+" (unmounted ")
	assert.NoDirExists(t, tmp)
	assert.FileExists(t, filepath.Join(hostDir, "keep"), "never removed through a mount")
	mi, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	assert.NotContains(t, string(mi), tmp)
}
