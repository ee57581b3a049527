package imagebuild

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gofrs/flock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// An interrupted build left proc (a tmpfs with another tmpfs inside) and
// dev (a bind mount of a host directory) mounted in its temporary dir:
// CleanInterrupted detaches them deepest first and removes the dir, and
// the bind mount's source is untouched (on main nothing cleaned these up:
// gc looked at run dirs only).
func TestCleanInterruptedUnmountsAndNeverFollows(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	cache := t.TempDir()
	tmp := filepath.Join(cache, "images", ".tmp-0123456789abcdef-42")
	hostDev := t.TempDir()
	sentinel := filepath.Join(hostDev, "null")
	require.NoError(t, os.WriteFile(sentinel, []byte("host file"), 0o644))
	for _, d := range []string{"proc", "dev", "sys"} {
		require.NoError(t, os.MkdirAll(filepath.Join(tmp, "root", d), 0o755))
	}
	mount := func(src, dst, fstype string, flags uintptr) {
		if err := unix.Mount(src, dst, fstype, flags, ""); err != nil {
			t.Skipf("mount %s: %v", dst, err)
		}
		t.Cleanup(func() { _ = unix.Unmount(dst, unix.MNT_DETACH) })
	}
	proc := filepath.Join(tmp, "root", "proc")
	mount("tmpfs", proc, "tmpfs", 0)
	require.NoError(t, os.MkdirAll(filepath.Join(proc, "inner"), 0o755))
	mount("tmpfs", filepath.Join(proc, "inner"), "tmpfs", 0)
	mount(hostDev, filepath.Join(tmp, "root", "dev"), "", unix.MS_BIND)

	// A running build of another key keeps its dir.
	busy := filepath.Join(cache, "images", ".tmp-fedcba9876543210-7")
	require.NoError(t, os.MkdirAll(busy, 0o755))
	l := flock.New(EntryDir(cache, "fedcba9876543210") + ".lock")
	ok, err := l.TryLock()
	require.NoError(t, err)
	require.True(t, ok)
	defer l.Unlock()

	dry, err := CleanInterrupted(cache, true)
	require.NoError(t, err)
	require.Len(t, dry, 2)
	assert.DirExists(t, tmp, "dry run")

	got, err := CleanInterrupted(cache, false)
	require.NoError(t, err)
	require.Len(t, got, 2)
	byDir := map[string]Interrupted{got[0].Dir: got[0], got[1].Dir: got[1]}
	it := byDir[tmp]
	assert.Empty(t, it.Err)
	assert.Equal(t, []string{filepath.Join(proc, "inner"), filepath.Join(tmp, "root", "proc"), filepath.Join(tmp, "root", "dev")}[0], it.Mounts[0], "deepest first")
	assert.Len(t, it.Mounts, 3)
	assert.NoDirExists(t, tmp)
	left, err := mountsUnder(tmp)
	require.NoError(t, err)
	assert.Empty(t, left)
	b, err := os.ReadFile(sentinel)
	require.NoError(t, err, "the bind mount's source survives")
	assert.Equal(t, "host file", string(b))
	assert.True(t, byDir[busy].InUse)
	assert.DirExists(t, busy)
}
