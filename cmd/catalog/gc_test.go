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
