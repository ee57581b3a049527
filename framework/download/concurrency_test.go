package download

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// slowServe serves data with ranges, slowly enough (~300 ms) for every
// concurrent caller to arrive while the first download runs.
func slowServe(data []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.Header().Set("Accept-Ranges", "bytes")
		if r.Method == http.MethodHead {
			return
		}
		step := len(data) / 10
		for off := 0; off < len(data); off += step {
			w.Write(data[off:min(off+step, len(data))])
			w.(http.Flusher).Flush()
			time.Sleep(30 * time.Millisecond)
		}
	}
}

func TestConcurrentFetchDownloadsOnce(t *testing.T) {
	data := payload(1<<20, 30)
	srv, log := server(t, slowServe(data))
	dir := t.TempDir()
	url := srv.URL + "/shared.img"
	const n = 20
	results := make([]Result, n)
	errs := make([]error, n)
	newC := func() *Cache {
		c, err := New(WithCacheDir(dir), withLockPoll(5*time.Millisecond))
		require.NoError(t, err)
		return c
	}
	// Half share one Cache, half have their own: both must work.
	shared := newC()
	caches := make([]*Cache, n)
	for i := range n {
		caches[i] = shared
		if i%2 == 1 {
			caches[i] = newC()
		}
	}
	ctx := ctxT(t)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = caches[i].Fetch(ctx, url, sha256Of(data))
		}()
	}
	wg.Wait()
	downloaded := 0
	for i := range n {
		require.NoError(t, errs[i], "fetch %d", i)
		assert.Equal(t, data, readFile(t, results[i].Path))
		if results[i].Status == Downloaded {
			downloaded++
		}
	}
	assert.Equal(t, 1, downloaded)
	assert.Equal(t, []string{"GET"}, log.all(), "exactly one transfer")
}

// TestHelperProcessFetch is not a test: TestMultiProcessFetch runs the
// test binary as helper processes that each Fetch once.
func TestHelperProcessFetch(t *testing.T) {
	if os.Getenv("DOWNLOAD_HELPER") != "1" {
		t.Skip("helper process for TestMultiProcessFetch")
	}
	c, err := New(WithCacheDir(os.Getenv("DOWNLOAD_DIR")), withLockPoll(5*time.Millisecond))
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	if f := os.Getenv("DOWNLOAD_STARTED"); f != "" {
		_ = os.WriteFile(f, nil, 0o644) // this process is about to Fetch
	}
	r, err := c.Fetch(context.Background(), os.Getenv("DOWNLOAD_URL"), os.Getenv("DOWNLOAD_DIGEST"))
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(3)
	}
	fmt.Printf("RESULT %s|%s\n", r.Status, r.Path)
	os.Exit(0)
}

func TestMultiProcessFetch(t *testing.T) {
	data := payload(1<<20, 31)
	srv, log := server(t, slowServe(data))
	dir := t.TempDir()
	url := srv.URL + "/multi.img"
	const n = 5
	outs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcessFetch$", "-test.count=1")
			cmd.Env = append(os.Environ(), "DOWNLOAD_HELPER=1", "DOWNLOAD_DIR="+dir,
				"DOWNLOAD_URL="+url, "DOWNLOAD_DIGEST="+sha256Of(data))
			out, err := cmd.CombinedOutput()
			outs[i], errs[i] = string(out), err
		}()
	}
	wg.Wait()
	statuses := map[string]int{}
	for i := range n {
		require.NoError(t, errs[i], outs[i])
		line := ""
		for _, l := range strings.Split(outs[i], "\n") {
			if strings.HasPrefix(l, "RESULT ") {
				line = strings.TrimPrefix(l, "RESULT ")
			}
		}
		require.NotEmpty(t, line, outs[i])
		st, path, _ := strings.Cut(line, "|")
		statuses[st]++
		assert.Equal(t, data, readFile(t, path))
	}
	assert.Equal(t, map[string]int{"downloaded": 1, "from cache": n - 1}, statuses)
	assert.Equal(t, []string{"GET"}, log.all(), "one transfer across processes")
}

func TestPruneAndList(t *testing.T) {
	a, b, p := payload(10_000, 32), payload(20_000, 33), payload(50_000, 34)
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/a.img":
			serveBytes(a)(w, r)
		case "/b.img":
			serveBytes(b)(w, r)
		case "/p.img":
			abortAfter(w, p, 20_000)
		}
	})
	c := newCache(t)
	ctx := ctxT(t)
	ra, err := c.Fetch(ctx, srv.URL+"/a.img", sha256Of(a))
	require.NoError(t, err)
	rb, err := c.Fetch(ctx, srv.URL+"/b.img", sha256Of(b))
	require.NoError(t, err)
	_, err = c.Fetch(ctx, srv.URL+"/p.img", sha256Of(p), WithRetry(1, 0))
	require.Error(t, err, "interrupted: a partial stays for resuming")

	// a was last used 40 days ago; the partial is as old.
	old := time.Now().Add(-40 * 24 * time.Hour)
	require.NoError(t, os.Chtimes(filepath.Join(filepath.Dir(ra.Path), metaName), old, old))
	pdir := c.EntryDir(srv.URL + "/p.img")
	require.NoError(t, os.Chtimes(filepath.Join(pdir, partName), old, old))
	// A temp file left by a crash in b's entry.
	require.NoError(t, os.WriteFile(filepath.Join(filepath.Dir(rb.Path), "meta.json.tmp"), []byte("x"), 0o644))

	list, err := c.List()
	require.NoError(t, err)
	require.Len(t, list, 3)
	assert.Equal(t, srv.URL+"/b.img", list[0].URL, "most recently used first")
	assert.True(t, list[0].Complete)
	assert.Equal(t, sha256Of(b), list[0].Digest)
	assert.EqualValues(t, len(b), list[0].Size)
	assert.Equal(t, rb.Path, list[0].Path)
	assert.WithinDuration(t, time.Now(), list[0].LastUsed, time.Minute)
	var partial Entry
	for _, e := range list {
		if !e.Complete {
			partial = e
		}
	}
	assert.Equal(t, srv.URL+"/p.img", partial.URL)
	assert.EqualValues(t, 20_000, partial.PartialSize)

	// Dry run removes nothing.
	rep, err := c.Prune(ctx, PruneOptions{OlderThan: 30 * 24 * time.Hour, DryRun: true})
	require.NoError(t, err)
	assert.Len(t, rep.Removed, 2)
	list, _ = c.List()
	assert.Len(t, list, 3)

	rep, err = c.Prune(ctx, PruneOptions{OlderThan: 30 * 24 * time.Hour})
	require.NoError(t, err)
	var removed []string
	for _, e := range rep.Removed {
		removed = append(removed, e.URL)
	}
	assert.ElementsMatch(t, []string{srv.URL + "/a.img", srv.URL + "/p.img"}, removed)
	assert.Positive(t, rep.Freed)
	assert.NoDirExists(t, filepath.Dir(ra.Path))
	assert.NoDirExists(t, pdir)
	assert.NoFileExists(t, filepath.Join(filepath.Dir(rb.Path), "meta.json.tmp"), "stale temp removed")
	assert.FileExists(t, rb.Path)

	// An entry in use (locked) is skipped even by --all.
	unlock, err := lockEntry(ctx, filepath.Dir(rb.Path), false, time.Millisecond, nil)
	require.NoError(t, err)
	rep, err = c.Prune(ctx, PruneOptions{All: true})
	require.NoError(t, err)
	assert.Empty(t, rep.Removed)
	require.Len(t, rep.InUse, 1)
	unlock()
	rep, err = c.Prune(ctx, PruneOptions{All: true})
	require.NoError(t, err)
	assert.Len(t, rep.Removed, 1)
	list, err = c.List()
	require.NoError(t, err)
	assert.Empty(t, list)

	// A pruned URL is simply downloaded again.
	r, err := c.Fetch(ctx, srv.URL+"/a.img", sha256Of(a))
	require.NoError(t, err)
	assert.Equal(t, Downloaded, r.Status)

	_, err = c.Prune(ctx, PruneOptions{})
	assert.ErrorContains(t, err, "give an age")
}

func TestVerifyFindsCorruption(t *testing.T) {
	a, b := payload(10_000, 35), payload(10_000, 36)
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/a" {
			serveBytes(a)(w, r)
		} else {
			serveBytes(b)(w, r)
		}
	})
	c := newCache(t)
	_, err := c.Fetch(ctxT(t), srv.URL+"/a", sha256Of(a))
	require.NoError(t, err)
	rb, err := c.Fetch(ctxT(t), srv.URL+"/b", "", WithoutDigest())
	require.NoError(t, err)
	fi, _ := os.Stat(rb.Path)
	flipByte(t, rb.Path, 1)
	require.NoError(t, os.Chtimes(rb.Path, fi.ModTime(), fi.ModTime()))

	reps, err := c.Verify(ctxT(t))
	require.NoError(t, err)
	require.Len(t, reps, 2)
	bad := 0
	for _, r := range reps {
		if r.Entry.URL == srv.URL+"/b" {
			require.Error(t, r.Err)
			assert.ErrorIs(t, r.Err, ErrOffline)
			assert.Contains(t, r.Err.Error(), "was corrupt")
			bad++
		} else {
			assert.NoError(t, r.Err)
		}
	}
	assert.Equal(t, 1, bad)
	assert.NoFileExists(t, rb.Path, "corrupt entry removed")
}

// Prune removing an entry while another Fetch waits on its lock: the
// waiter notices the lock file was unlinked and starts over.
func TestLockSurvivesPrune(t *testing.T) {
	data := payload(1000, 37)
	srv, _ := server(t, serveBytes(data))
	c := newCache(t)
	url := srv.URL + "/x"
	_, err := c.Fetch(ctxT(t), url, sha256Of(data))
	require.NoError(t, err)
	dir := c.EntryDir(url)
	unlock, err := lockEntry(ctxT(t), dir, true, time.Millisecond, nil)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := c.Fetch(ctxT(t), url, sha256Of(data))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, removeEntry(dir)) // as Prune does, holding the lock
	unlock()
	require.NoError(t, <-done)
	assert.FileExists(t, filepath.Join(dir, dataName))
	assert.FileExists(t, filepath.Join(dir, lockName))
}
