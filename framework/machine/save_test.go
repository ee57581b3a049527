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

// The clock rule matches the uevent the guest kernel sends when the VM
// generation ID changes and starts the unit (udevd may not set the clock
// itself), which reads the RTC.
func TestResumeClockRule(t *testing.T) {
	assert.Contains(t, resumeClockRule, `ACTION=="change", ENV{NEW_VMGENID}=="1", RUN+="/usr/bin/systemctl --no-block start guestcatalog-resume-clock.service"`)
	assert.NotContains(t, resumeClockRule, "date", "udevd drops CAP_SYS_TIME: the unit sets the clock")
	assert.Contains(t, resumeClockUnit, "ExecStart=/bin/sh -c 'date -u -s @$(cat /sys/class/rtc/rtc0/since_epoch)'")
	assert.NotContains(t, resumeClockRule+resumeClockUnit, "\nEOF\n", "the heredocs of installClockRule end where they should")
}
