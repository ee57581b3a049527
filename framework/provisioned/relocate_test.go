package provisioned

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework/machine"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
	"github.com/guestcatalog/guestcatalog/framework/qemu/qemutest"
)

// savedOver commits an entry under cache whose disk is a real qcow2
// overlay over cache/images/b/disk.qcow2, and returns the base's path.
func savedOver(t *testing.T, cache string) string {
	t.Helper()
	ctx := context.Background()
	base := filepath.Join(cache, "images", "b", "disk.qcow2")
	require.NoError(t, os.MkdirAll(filepath.Dir(base), 0o755))
	createImage(t, base)
	s, err := Open(cache)
	require.NoError(t, err)
	st, err := s.Stage()
	require.NoError(t, err)
	stageAll(t, st)
	require.NoError(t, os.Remove(st.Path(FileDisk)))
	require.NoError(t, qemu.CreateOverlay(ctx, base, qemu.FormatQcow2, st.Path(FileDisk), 0))
	_, err = st.Commit(Meta{Key: "k", Base: base})
	require.NoError(t, err)
	return base
}

func createImage(t *testing.T, path string) {
	t.Helper()
	out, err := exec.Command(qemu.QemuImg, "create", "-q", "-f", "qcow2", path, "1M").CombinedOutput()
	require.NoError(t, err, "%s", out)
}

// copyTree copies dir to dst file by file as cp -a, rsync or a restore
// would: new inodes; mtimes kept when keepMtime.
func copyTree(t *testing.T, dir, dst string, keepMtime bool) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, rel), b, 0o644); err != nil || !keepMtime {
			return err
		}
		return os.Chtimes(filepath.Join(dst, rel), st.ModTime(), st.ModTime())
	}))
}

func backingOf(t *testing.T, disk string) string {
	t.Helper()
	info, err := qemu.Info(context.Background(), disk, qemu.FormatQcow2)
	require.NoError(t, err)
	return info.BackingFile
}

// A cache moved or copied elsewhere keeps its saved guests: the entry is
// found over the new cache's base, its copied files pass Verify by digest,
// and Relocate rebases the disk onto the new base and records it; the next
// resume does nothing of the kind. Before, Lookup removed an entry whose
// old base was gone, and the machine refused one whose disk named the old
// cache (a local CI run on a copied cache failed every instance test).
func TestRelocateAMovedCache(t *testing.T) {
	qemutest.RequireTools(t, qemu.QemuImg)
	ctx := context.Background()
	root := t.TempDir()
	oldCache := filepath.Join(root, "old")
	oldBase := savedOver(t, oldCache)

	for _, moved := range []bool{false, true} {
		name := map[bool]string{false: "copied", true: "moved"}[moved]
		t.Run(name, func(t *testing.T) {
			cache := filepath.Join(root, name)
			copyTree(t, oldCache, cache, true)
			if moved {
				require.NoError(t, os.Rename(oldCache, oldCache+".gone"))
				t.Cleanup(func() { require.NoError(t, os.Rename(oldCache+".gone", oldCache)) })
			}
			base := filepath.Join(cache, "images", "b", "disk.qcow2")
			s, err := Open(cache)
			require.NoError(t, err)
			e, ok := s.Lookup("k", base)
			require.True(t, ok, "an entry over the moved base is kept")
			require.NoError(t, e.Verify())
			assert.NotEmpty(t, e.Rerecorded)
			require.NoError(t, e.Relocate(ctx, base, qemu.FormatQcow2))
			assert.Equal(t, oldBase, e.MovedFrom)
			assert.Equal(t, base, e.Meta.Base)
			assert.Equal(t, base, backingOf(t, e.Path(FileDisk)))

			again, ok := s.Lookup("k", base)
			require.True(t, ok)
			require.NoError(t, again.Verify(), "the rebased disk's identity is recorded")
			assert.Empty(t, again.Rerecorded)
			require.NoError(t, again.Relocate(ctx, base, qemu.FormatQcow2))
			assert.Empty(t, again.MovedFrom, "nothing to do the second time")
		})
	}
}

// The inputs Relocate refuses: a disk that names neither the base it was
// saved over nor the new one; and Lookup still removes an entry whose base
// is the run's and is gone.
func TestRelocateRefusesAForeignBackingFile(t *testing.T) {
	qemutest.RequireTools(t, qemu.QemuImg)
	ctx := context.Background()
	cache := t.TempDir()
	base := savedOver(t, cache)
	s, err := Open(cache)
	require.NoError(t, err)
	e, ok := s.Lookup("k", base)
	require.True(t, ok)
	other := filepath.Join(t.TempDir(), "other.qcow2")
	createImage(t, other)
	require.NoError(t, qemu.RebaseUnsafe(ctx, e.Path(FileDisk), other, qemu.FormatQcow2))
	err = e.Relocate(ctx, filepath.Join(t.TempDir(), "new-base.qcow2"), qemu.FormatQcow2)
	require.ErrorIs(t, err, machine.ErrSavedGuestMismatch)
	assert.Contains(t, err.Error(), `backing-filename is "`+other+`"; it was saved over `+base)
	assert.Equal(t, other, backingOf(t, e.Path(FileDisk)), "not rebased")

	require.NoError(t, os.Remove(base))
	_, ok = s.Lookup("k", base)
	assert.False(t, ok, "the run's own base is gone: removed")
}
