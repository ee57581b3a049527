package download

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Ten concurrent pulls of one URL whose server sends other bytes than the
// pinned ones: one transfer, and all ten get the mismatch (on main each
// waiter downloaded again: 10 GETs).
func TestConcurrentFetchesShareAMismatchVerdict(t *testing.T) {
	data := payload(256<<10, 41)
	pinned := sha256Of(payload(256<<10, 42)) // what the catalog pins: other bytes
	srv, log := server(t, slowServe(data))
	dir := t.TempDir()
	url := srv.URL + "/tampered.img"
	const n = 10
	errs := make([]error, n)
	ctx := ctxT(t)
	var wg sync.WaitGroup
	for i := range n {
		c, err := New(WithCacheDir(dir), withLockPoll(5*time.Millisecond), WithBackoff(5*time.Millisecond, 20*time.Millisecond))
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.Fetch(ctx, url, pinned)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		require.Error(t, err, "fetch %d", i)
		assert.ErrorIs(t, err, ErrDigestMismatch, "fetch %d", i)
		var mm *DigestMismatchError
		require.ErrorAs(t, err, &mm, "fetch %d", i)
		assert.Equal(t, pinned, mm.Expected)
	}
	assert.Equal(t, 1, log.count("GET"), "exactly one transfer for ten pulls: %v", log.all())
	c, err := New(WithCacheDir(dir))
	require.NoError(t, err)
	files := entryFiles(t, c, url)
	assert.NotContains(t, files, dataName, "nothing cached as valid")
	assert.NotContains(t, files, metaName)
	assert.NotContains(t, files, partName)

	// A later pull (not waiting on that transfer) asks the server again.
	_, err = c.Fetch(ctx, url, pinned)
	assert.ErrorIs(t, err, ErrDigestMismatch)
	assert.Equal(t, 2, log.count("GET"))
	// And once the server is right, the entry is good.
	r, err := c.Fetch(ctx, url, sha256Of(data))
	require.NoError(t, err)
	assert.Equal(t, Downloaded, r.Status)
	assert.NotContains(t, entryFiles(t, c, url), verdictName, "a good download clears the verdict")
}

// ENOSPC while writing ends the download at once (no retry) and leaves no
// partial file behind (on main: 5 attempts and data.part left).
func TestNoSpaceEndsTheDownloadAndRemovesThePartial(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=512k"); err != nil {
		t.Skipf("mounting a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	data := payload(2<<20, 43)
	srv, log := server(t, serveBytes(data))
	c := newCache(t, WithCacheDir(dir))
	url := srv.URL + "/big.img"
	start := time.Now()
	_, err := c.Fetch(ctxT(t), url, sha256Of(data))
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.ENOSPC), "error says no space: %v", err)
	assert.Equal(t, 1, log.count("GET"), "no retry: %v", log.all())
	assert.Less(t, time.Since(start), 5*time.Second)
	for _, f := range entryFiles(t, c, url) {
		assert.NotEqual(t, partName, f, "partial file removed")
	}
	_, statErr := os.Stat(filepath.Join(c.EntryDir(url), partName))
	assert.True(t, os.IsNotExist(statErr))
}

// The same across processes (10 `catalog pull`s against a mirror serving
// other bytes): one transfer, ten mismatch errors. The server holds the
// body until every process has called Fetch.
func TestMultiProcessFetchesShareAMismatchVerdict(t *testing.T) {
	data := payload(64<<10, 51)
	pinned := sha256Of(payload(64<<10, 52))
	startedDir := t.TempDir()
	const n = 10
	allStarted := func() bool {
		des, _ := os.ReadDir(startedDir)
		return len(des) == n
	}
	srv, log := server(t, func(w http.ResponseWriter, r *http.Request) {
		deadline := time.Now().Add(20 * time.Second)
		for !allStarted() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond) // the others are waiting on the lock by now
		w.Write(data)
	})
	dir := t.TempDir()
	url := srv.URL + "/tampered-multi.img"
	outs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcessFetch$", "-test.count=1")
			cmd.Env = append(os.Environ(), "DOWNLOAD_HELPER=1", "DOWNLOAD_DIR="+dir, "DOWNLOAD_URL="+url,
				"DOWNLOAD_DIGEST="+pinned, "DOWNLOAD_STARTED="+filepath.Join(startedDir, fmt.Sprint(i)))
			out, _ := cmd.CombinedOutput()
			outs[i] = string(out)
		}()
	}
	wg.Wait()
	for i := range n {
		assert.Contains(t, outs[i], "ERROR downloading "+url+": digest mismatch", "process %d", i)
	}
	assert.Equal(t, 1, log.count("GET"), "one transfer across ten processes: %v", log.all())
}
