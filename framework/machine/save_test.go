package machine

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework/qemu"
	"github.com/guestcatalog/guestcatalog/framework/sshx"
)

// The saved RAM keeps the memory file's bytes and leaves holes where it
// has zero pages (most of a guest's RAM), so it costs little disk and a
// resume faults nothing in from disk for them.
func TestCopySparseKeepsBytesAndHoles(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "ram")
	data := make([]byte, 8<<20+100) // not a multiple of a page
	copy(data[4096*3:], "guest data")
	copy(data[len(data)-10:], "tail bytes")
	require.NoError(t, os.WriteFile(src, data, 0o600))
	dst := filepath.Join(dir, "ram.bin")
	require.NoError(t, copySparse(context.Background(), src, dst))
	got, err := os.ReadFile(dst)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, got), "same bytes")
	st, err := os.Stat(dst)
	require.NoError(t, err)
	blocks := st.Sys().(*syscall.Stat_t).Blocks * 512
	assert.Less(t, blocks, int64(1<<20), "zero pages are holes: %d bytes allocated", blocks)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, copySparse(ctx, src, dst+".2"), context.Canceled)
	assert.NoFileExists(t, dst+".2", "a cancelled copy leaves nothing")
}

// A Resume without its state or RAM fails before anything is launched.
func TestResumeNeedsStateAndRAM(t *testing.T) {
	launched := false
	_, err := Start(context.Background(), Config{Template: debianTemplate(t), Image: Image{Disk: "/nonexistent/base.qcow2", Format: "qcow2"},
		ArtifactsDir: t.TempDir(), SkipProbes: true, onLaunch: func(*Machine) { launched = true },
		Resume: &Resume{Disk: "/saved/disk.qcow2", Seed: "/saved/seed.iso", Accel: "tcg"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "machine: Resume needs Disk, State, RAM and Seed")
	assert.False(t, launched)
}

// Save refuses a machine whose RAM is not in a memory file (not
// Saveable): its RAM could not be kept.
func TestSaveNeedsASaveableMachine(t *testing.T) {
	_, err := (&Machine{}).Save(context.Background(), t.TempDir())
	require.ErrorContains(t, err, "the machine is not running")
	m := &Machine{vm: &qemu.Instance{}, clientKey: &sshx.KeyPair{}, hostKey: &sshx.HostKey{}}
	_, err = m.Save(context.Background(), t.TempDir())
	require.ErrorContains(t, err, "the machine is not Saveable")
}
