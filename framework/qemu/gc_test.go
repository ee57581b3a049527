package qemu

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeOwner(t *testing.T, root, name string, o Owner) string {
	t.Helper()
	dir := filepath.Join(root, name)
	require.NoError(t, os.MkdirAll(dir, 0o700))
	b, err := json.Marshal(o)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, OwnerFile), b, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "overlay.qcow2"), []byte("x"), 0o600))
	return dir
}

// deadPID returns the PID of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	c := exec.Command("true")
	require.NoError(t, c.Run())
	return c.Process.Pid
}

func TestGcRemovesOnlyProvablyStaleRunDirs(t *testing.T) {
	root := t.TempDir()
	self := os.Getpid()
	selfStart, err := procStart(self)
	require.NoError(t, err)
	boot := bootID()

	alive := writeOwner(t, root, "alive", Owner{CreatedBy: CreatedBy, BootID: boot, PID: self, PIDStart: selfStart})
	dead := writeOwner(t, root, "dead", Owner{CreatedBy: CreatedBy, BootID: boot, PID: deadPID(t), PIDStart: 12345})
	reused := writeOwner(t, root, "reused", Owner{CreatedBy: CreatedBy, BootID: boot, PID: self, PIDStart: selfStart + 1})
	oldBoot := writeOwner(t, root, "oldboot", Owner{CreatedBy: CreatedBy, BootID: "another-boot", PID: self, PIDStart: selfStart})
	foreign := writeOwner(t, root, "foreign", Owner{CreatedBy: "someone-else", BootID: boot, PID: deadPID(t)})
	noOwner := filepath.Join(root, "no-owner")
	require.NoError(t, os.MkdirAll(noOwner, 0o700))
	broken := filepath.Join(root, "broken")
	require.NoError(t, os.MkdirAll(broken, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(broken, OwnerFile), []byte("{"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(root, "a-file"), nil, 0o600))

	dry, err := Gc(t.Context(), GcRoot(root), GcDryRun(true))
	require.NoError(t, err)
	assert.True(t, dry.DryRun)
	assert.ElementsMatch(t, []string{dead, reused, oldBoot}, dirs(dry.Removed))
	for _, d := range []string{dead, reused, oldBoot} {
		assert.DirExists(t, d, "dry run removes nothing")
	}

	res, err := Gc(t.Context(), GcRoot(root))
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{dead, reused, oldBoot}, dirs(res.Removed))
	assert.ElementsMatch(t, []string{alive, foreign, noOwner, broken, filepath.Join(root, "a-file")}, dirs(res.Kept))
	for _, d := range []string{dead, reused, oldBoot} {
		assert.NoDirExists(t, d)
	}
	for _, d := range []string{alive, foreign, noOwner, broken} {
		assert.DirExists(t, d)
	}
	reasons := map[string]string{}
	for _, e := range append(res.Removed, res.Kept...) {
		reasons[filepath.Base(e.Dir)] = e.Reason
	}
	assert.Contains(t, reasons["alive"], "is alive")
	assert.Contains(t, reasons["dead"], "is gone")
	assert.Contains(t, reasons["reused"], "is gone", "same PID, other start time: PID reuse")
	assert.Equal(t, "created before the last boot", reasons["oldboot"])
	assert.Contains(t, reasons["foreign"], "not provably ours")
	assert.Contains(t, reasons["no-owner"], "not provably ours")
	assert.Contains(t, reasons["broken"], "not provably ours")
}

func dirs(es []GcEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Dir)
	}
	return out
}

func TestGcMissingRoot(t *testing.T) {
	res, err := Gc(t.Context(), GcRoot(filepath.Join(t.TempDir(), "none")))
	require.NoError(t, err)
	assert.Empty(t, res.Removed)
}

func TestNewRunDirRecordsOwner(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	rd, err := NewRunDir(root, "vm1")
	require.NoError(t, err)
	fi, err := os.Stat(root)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	o, err := ReadOwner(rd.Path())
	require.NoError(t, err)
	assert.Equal(t, os.Getpid(), o.PID)
	assert.Equal(t, "vm1", o.Name)
	assert.True(t, processAlive(o.PID, o.PIDStart))
	assert.False(t, processAlive(o.PID, o.PIDStart+1))
	assert.Equal(t, rd.Path()+"/qmp.sock", rd.File(QMPSocketName))

	// Gc keeps it: we are alive.
	res, err := Gc(t.Context(), GcRoot(root))
	require.NoError(t, err)
	assert.Empty(t, res.Removed)
	require.NoError(t, rd.Remove())
	assert.NoDirExists(t, rd.Path())
}

func TestDefaultRunRootIsShort(t *testing.T) {
	assert.Equal(t, "/run/user/1000/guestcatalog", RunRootIn("/run/user/1000"))
	assert.Equal(t, filepath.Join(os.TempDir(), "guestcatalog-"+itoa(os.Getuid())), DefaultRunRoot())
	assert.Equal(t, DefaultRunRoot(), RunRootIn(""))
	// A socket in a run dir under the default root stays well below the limit.
	assert.Less(t, len(filepath.Join(os.TempDir(), "guestcatalog-4294967295", "r1234567890", QMPSocketName)), UnixPathMax)
}

func TestReferencesDir(t *testing.T) {
	assert.True(t, referencesDir([]string{"qemu", "-pidfile", "/r/x1/qemu.pid"}, "/r/x1"))
	assert.True(t, referencesDir([]string{"qemu", "-drive", "file=/r/a,,b/disk.qcow2"}, "/r/a,b"))
	assert.False(t, referencesDir([]string{"qemu", "-pidfile", "/r/x10/qemu.pid"}, "/r/x1"))
}

func TestFreePort(t *testing.T) {
	p, err := FreePort()
	require.NoError(t, err)
	assert.Greater(t, p, 1023)
}

func itoa(i int) string { return strconv.Itoa(i) }
