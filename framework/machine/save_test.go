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
