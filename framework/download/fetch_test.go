package download

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFetchDownloadsThenHitsCacheWithoutNetwork(t *testing.T) {
	data := payload(300_000, 1)
	srv, log := server(t, serveBytes(data))
	c := newCache(t)
	url := srv.URL + "/images/debian.qcow2"

	r, err := c.Fetch(ctxT(t), url, sha256Of(data))
	require.NoError(t, err)
	assert.Equal(t, Downloaded, r.Status)
	assert.Equal(t, data, readFile(t, r.Path))
	assert.Equal(t, sha256Of(data), r.Digest)
	assert.True(t, r.Verified)
	assert.EqualValues(t, len(data), r.Size)
	assert.Equal(t, url, r.URL)
	assert.Equal(t, url, r.Source)
	assert.Equal(t, filepath.Join(c.EntryDir(url), "data"), r.Path)
	assert.ElementsMatch(t, []string{"lock", "meta.json", "data"}, entryFiles(t, c, url))
	assert.Equal(t, []string{"GET"}, log.all())

	// Second Fetch (and a second Cache on the same dir): no request at all.
	srv.Close()
	c2, err := New(WithCacheDir(filepath.Dir(c.Dir())))
	require.NoError(t, err)
	for _, cc := range []*Cache{c, c2} {
		r2, err := cc.Fetch(ctxT(t), url, sha256Of(data))
		require.NoError(t, err)
		assert.Equal(t, FromCache, r2.Status)
		assert.Equal(t, r.Path, r2.Path)
		assert.Equal(t, sha256Of(data), r2.Digest)
	}
	assert.Len(t, log.all(), 1)

	var m meta
	require.NoError(t, readJSON(filepath.Join(c.EntryDir(url), metaName), &m))
	assert.Equal(t, url, m.URL)
	assert.Equal(t, sha256Of(data), m.Digest)
	assert.True(t, m.Verified)
	assert.EqualValues(t, len(data), m.Size)
	assert.Empty(t, m.Source)
}

func TestFetchSHA512(t *testing.T) {
	data := payload(50_000, 2)
	srv, _ := server(t, serveBytes(data))
	r, err := newCache(t).Fetch(ctxT(t), srv.URL+"/x.img", sha512Of(data))
	require.NoError(t, err)
	assert.Equal(t, sha512Of(data), r.Digest)
}

func TestResumeAfterConnectionDrop(t *testing.T) {
	data := payload(1<<20, 3)
	var gets atomic.Int32
	srv, log := server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && gets.Add(1) == 1 {
			abortAfter(w, data, 400_000)
			return
		}
		serveBytes(data)(w, r)
	})
	var out syncBuffer
	c := newCache(t)
	r, err := c.Fetch(ctxT(t), srv.URL+"/d.img", sha256Of(data), WithProgress(&out))
	require.NoError(t, err)
	assert.Equal(t, Resumed, r.Status)
	assert.Equal(t, data, readFile(t, r.Path))

	reqs := log.all()
	require.Len(t, reqs, 3, "GET (dropped), HEAD, GET with Range: %v", reqs)
	assert.Equal(t, "GET", reqs[0])
	assert.Equal(t, "HEAD", reqs[1])
	assert.Regexp(t, `^GET \d+-$`, reqs[2])
	var from int
	fmt.Sscanf(reqs[2], "GET %d-", &from)
	assert.Greater(t, from, 0)
	assert.LessOrEqual(t, from, 400_000)
	assert.Contains(t, out.String(), "retrying d.img in")
	assert.Contains(t, out.String(), "resuming d.img at")
	assert.NotContains(t, entryFiles(t, c, r.URL), partName)
}

func TestRetry500Then200(t *testing.T) {
	data := payload(10_000, 4)
	var n atomic.Int32
	srv, log := server(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= 2 {
			http.Error(w, "busy", http.StatusInternalServerError)
			return
		}
		serveBytes(data)(w, r)
	})
	r, err := newCache(t).Fetch(ctxT(t), srv.URL+"/x", sha256Of(data))
	require.NoError(t, err)
	assert.Equal(t, Downloaded, r.Status)
	assert.Equal(t, []string{"GET", "GET", "GET"}, log.all())
}

func TestRetryGivesUpAfterMaxAttempts(t *testing.T) {
	srv, log := server(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	})
	c := newCache(t, WithRetry(3, 0))
	_, err := c.Fetch(ctxT(t), srv.URL+"/x", sha256Of(nil))
	require.Error(t, err)
	assert.Len(t, log.all(), 3)
	var he *HTTPError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, 503, he.StatusCode)
	assert.Contains(t, err.Error(), "downloading "+srv.URL+"/x: server returned 503 Service Unavailable (gave up after 3 attempts")
}

func TestNoRetryOn404And403(t *testing.T) {
	for _, code := range []int{404, 403, 410} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			srv, log := server(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", code) })
			c := newCache(t)
			url := srv.URL + "/missing.img"
			_, err := c.Fetch(ctxT(t), url, sha256Of(nil))
			require.Error(t, err)
			assert.Equal(t, []string{"GET"}, log.all(), "not retried")
			var he *HTTPError
			require.ErrorAs(t, err, &he)
			assert.Equal(t, code, he.StatusCode)
			assert.Equal(t, fmt.Sprintf("downloading %s: server returned %d %s", url, code, http.StatusText(code)), err.Error())
			assert.Empty(t, entryFiles(t, c, url), "no file left")
		})
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	data := payload(1000, 5)
	var n atomic.Int32
	var first time.Time
	var waited time.Duration
	srv, log := server(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			first = time.Now()
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		waited = time.Since(first)
		serveBytes(data)(w, r)
	})
	_, err := newCache(t).Fetch(ctxT(t), srv.URL+"/x", sha256Of(data))
	require.NoError(t, err)
	assert.Len(t, log.all(), 2)
	assert.GreaterOrEqual(t, waited, 900*time.Millisecond, "Retry-After: 1 honoured (backoff alone is 5ms)")
}

func TestRetryAfterTooLongFailsAtOnce(t *testing.T) {
	srv, log := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		http.Error(w, "come back later", http.StatusTooManyRequests)
	})
	start := time.Now()
	_, err := newCache(t, WithMaxRetryAfter(time.Minute)).Fetch(ctxT(t), srv.URL+"/x", sha256Of(nil))
	require.Error(t, err)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Len(t, log.all(), 1)
	assert.Contains(t, err.Error(), "429 Too Many Requests (Retry-After 1h0m0s); not waiting that long (limit 1m0s)")
}

func TestWrongBytesDigestMismatch(t *testing.T) {
	want := payload(20_000, 6)
	served := payload(20_000, 7)
	srv, log := server(t, serveBytes(served))
	c := newCache(t)
	url := srv.URL + "/bad.img"
	_, err := c.Fetch(ctxT(t), url, sha256Of(want))
	require.Error(t, err)
	require.ErrorIs(t, err, ErrDigestMismatch)
	var mm *DigestMismatchError
	require.ErrorAs(t, err, &mm)
	assert.Equal(t, sha256Of(want), mm.Expected)
	assert.Equal(t, sha256Of(served), mm.Actual)
	assert.Equal(t, fmt.Sprintf("downloading %s: digest mismatch: expected %s, got %s", url, sha256Of(want), sha256Of(served)), err.Error())
	assert.Equal(t, []string{"GET"}, log.all(), "a fresh download's mismatch is not retried")
	assert.Subset(t, []string{lockName, verdictName}, entryFiles(t, c, url), "bad bytes never stay: only the lock and the verdict")
}

// A partial file plus a server that says Accept-Ranges but answers the
// Range with 200 and the whole body: grab alone would append it (see
// go-libraries.md §2). We must restart from zero and end intact.
func TestServerIgnoringRangeDoesNotCorrupt(t *testing.T) {
	data := payload(500_000, 8)
	var gets atomic.Int32
	srv, log := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Accept-Ranges", "bytes")
		if r.Method == http.MethodGet && gets.Add(1) == 1 {
			abortAfter(w, data, 200_000)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		if r.Method == http.MethodGet {
			w.Write(data) // 200, Range ignored
		}
	})
	c := newCache(t)
	var out syncBuffer
	r, err := c.Fetch(ctxT(t), srv.URL+"/liar.img", sha256Of(data), WithProgress(&out))
	require.NoError(t, err)
	// Caught from the status line, before any byte was appended (not
	// later, by the digest).
	assert.Regexp(t, `restarting liar.img from zero: server answered a Range request for bytes \d+- with "200 OK" instead of 206 Partial Content`, out.String())
	assert.Equal(t, Downloaded, r.Status)
	assert.Equal(t, data, readFile(t, r.Path))
	reqs := log.all()
	require.Len(t, reqs, 4, "%v", reqs)
	assert.Equal(t, "GET", reqs[0])
	assert.Equal(t, "HEAD", reqs[1])
	assert.Regexp(t, `^GET \d+-$`, reqs[2], "resume attempted")
	assert.Equal(t, "GET", reqs[3], "then from zero, without Range")
}

// A partial file as long as the real one but with other bytes: grab sends
// a HEAD, no GET, and calls it done. The digest catches it and we restart.
func TestRightSizeWrongPartialIsRefetched(t *testing.T) {
	data := payload(100_000, 9)
	srv, log := server(t, serveBytes(data))
	c := newCache(t)
	url := srv.URL + "/x.img"
	writePartial(t, c, url, payload(len(data), 10))
	r, err := c.Fetch(ctxT(t), url, sha256Of(data))
	require.NoError(t, err)
	assert.Equal(t, Downloaded, r.Status)
	assert.Equal(t, data, readFile(t, r.Path))
	assert.Equal(t, []string{"HEAD", "GET"}, log.all())
}

// A partial file whose prefix is wrong: the resume gives a mismatch, which
// restarts from zero once.
func TestResumeMismatchRestartsFromZeroOnce(t *testing.T) {
	data := payload(100_000, 11)
	srv, log := server(t, serveBytes(data))
	c := newCache(t)
	url := srv.URL + "/x.img"
	writePartial(t, c, url, payload(30_000, 12))
	r, err := c.Fetch(ctxT(t), url, sha256Of(data))
	require.NoError(t, err)
	assert.Equal(t, Downloaded, r.Status)
	assert.Equal(t, data, readFile(t, r.Path))
	assert.Equal(t, []string{"HEAD", "GET 30000-", "GET"}, log.all())

	// With a server whose bytes are wrong, the restart also fails: the
	// error is the mismatch, after exactly one restart, and nothing stays.
	srv2, log2 := server(t, serveBytes(payload(100_000, 13)))
	url2 := srv2.URL + "/y.img"
	writePartial(t, c, url2, payload(30_000, 12))
	_, err = c.Fetch(ctxT(t), url2, sha256Of(data))
	require.ErrorIs(t, err, ErrDigestMismatch)
	assert.Equal(t, []string{"HEAD", "GET 30000-", "GET"}, log2.all())
	assert.Subset(t, []string{lockName, verdictName}, entryFiles(t, c, url2))
}

func TestNoContentLength(t *testing.T) {
	data := payload(200_000, 14)
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		for off := 0; off < len(data); off += 20_000 {
			w.Write(data[off : off+20_000])
			w.(http.Flusher).Flush() // chunked: no Content-Length
			time.Sleep(5 * time.Millisecond)
		}
	})
	var out syncBuffer
	r, err := newCache(t).Fetch(ctxT(t), srv.URL+"/chunked.img", sha256Of(data),
		WithProgress(&out), WithProgressInterval(10*time.Millisecond))
	require.NoError(t, err)
	assert.Equal(t, data, readFile(t, r.Path))
	assert.EqualValues(t, len(data), r.Size)
	assert.Regexp(t, `(?m)^downloading chunked\.img: \d+(\.\d)? KiB, \d+(\.\d)? [KM]iB/s$`, out.String(), "no total, no percentage")
	assert.Contains(t, out.String(), "downloaded chunked.img: 195 KiB in ")
}

func TestProgressLinesOnSlowServer(t *testing.T) {
	data := payload(256<<10, 15)
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		for off := 0; off < len(data); off += 16 << 10 {
			w.Write(data[off : off+16<<10])
			w.(http.Flusher).Flush()
			time.Sleep(15 * time.Millisecond)
		}
	})
	var out syncBuffer
	_, err := newCache(t).Fetch(ctxT(t), srv.URL+"/slow.img", sha256Of(data),
		WithProgress(&out), WithProgressInterval(40*time.Millisecond))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	re := regexp.MustCompile(`^downloading slow\.img: \d+(\.\d)? KiB / 256 KiB \(\d+%\), \d+(\.\d)? [KM]iB/s, ETA (<1s|\d+s)$`)
	matched := 0
	for _, l := range lines {
		if re.MatchString(l) {
			matched++
		}
	}
	assert.GreaterOrEqual(t, matched, 3, out.String())
	assert.Regexp(t, `^downloaded slow\.img: 256 KiB in \d`, lines[len(lines)-1])
}

func TestSilentByDefault(t *testing.T) {
	// Nothing but the test's own output: the library writes nowhere.
	data := payload(1000, 16)
	srv, _ := server(t, serveBytes(data))
	stderr := os.Stderr
	r, w, err := os.Pipe()
	require.NoError(t, err)
	os.Stderr = w
	_, ferr := newCache(t).Fetch(ctxT(t), srv.URL+"/x", sha256Of(data))
	os.Stderr = stderr
	w.Close()
	var buf bytes.Buffer
	buf.ReadFrom(r)
	require.NoError(t, ferr)
	assert.Empty(t, buf.String())
}

func TestStalledTransferIsRetriedAndResumed(t *testing.T) {
	data := payload(300_000, 17)
	var gets atomic.Int32
	srv, log := server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && gets.Add(1) == 1 {
			w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			w.Header().Set("Accept-Ranges", "bytes")
			w.Write(data[:100_000])
			w.(http.Flusher).Flush()
			select { // hang, as a dead peer would
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return
		}
		serveBytes(data)(w, r)
	})
	start := time.Now()
	r, err := newCache(t, WithStallTimeout(300*time.Millisecond)).Fetch(ctxT(t), srv.URL+"/stall.img", sha256Of(data))
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Equal(t, Resumed, r.Status)
	assert.Equal(t, data, readFile(t, r.Path))
	assert.Equal(t, "GET 100000-", log.all()[2])
}

func TestCancelLeavesNothingVisibleAndNoGoroutines(t *testing.T) {
	data := payload(1<<20, 18)
	started := make(chan struct{})
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.Write(data[:64<<10])
		w.(http.Flusher).Flush()
		close(started)
		<-r.Context().Done()
	})
	hc := &http.Client{Transport: &http.Transport{}}
	c := newCache(t, WithHTTPClient(hc))
	url := srv.URL + "/c.img"
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; time.Sleep(50 * time.Millisecond); cancel() }()
	res, err := c.Fetch(ctx, url, sha256Of(data))
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, "downloading "+url+": context canceled", err.Error())
	assert.Empty(t, res.Path)
	files := entryFiles(t, c, url)
	assert.NotContains(t, files, "data")
	assert.NotContains(t, files, "meta.json")
	hc.CloseIdleConnections()
	requireNoLeaks(t)
}

func TestCancelWhileWaitingForLock(t *testing.T) {
	c := newCache(t)
	url := "http://127.0.0.1:1/never"
	unlock, err := lockEntry(context.Background(), c.EntryDir(url), true, time.Millisecond, nil)
	require.NoError(t, err)
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = c.Fetch(ctx, url, sha256Of(nil))
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestOffline(t *testing.T) {
	data := payload(5000, 19)
	srv, _ := server(t, serveBytes(data))
	c := newCache(t)
	url := srv.URL + "/x.qcow2"
	_, err := c.Fetch(ctxT(t), url, sha256Of(data), WithOffline())
	require.ErrorIs(t, err, ErrOffline)
	msg := err.Error()
	assert.Contains(t, msg, url+" is not in the cache ("+c.Dir()+")")
	assert.Contains(t, msg, "catalog pull")
	assert.Contains(t, msg, "copy its cache directory")
	assert.Contains(t, msg, "--mirror")

	_, err = c.Fetch(ctxT(t), url, sha256Of(data))
	require.NoError(t, err)
	srv.Close()
	r, err := c.Fetch(ctxT(t), url, sha256Of(data), WithOffline())
	require.NoError(t, err)
	assert.Equal(t, FromCache, r.Status)

	// Offline with a digest the cache does not have.
	_, err = c.Fetch(ctxT(t), url, sha256Of([]byte("other")), WithOffline())
	require.ErrorIs(t, err, ErrOffline)
	assert.Contains(t, err.Error(), "is cached with digest "+sha256Of(data))
	// Same, with another algorithm: the file is re-hashed, found to be
	// something else, and kept (it is not corrupt, only not what is wanted).
	_, err = c.Fetch(ctxT(t), url, sha512Of([]byte("other")), WithOffline())
	require.ErrorIs(t, err, ErrOffline)
	assert.Contains(t, err.Error(), "is cached with digest "+sha256Of(data))
	r, err = c.Fetch(ctxT(t), url, sha256Of(data), WithOffline())
	require.NoError(t, err)
	assert.Equal(t, data, readFile(t, r.Path))
}

func TestMirrorRewrite(t *testing.T) {
	data := payload(40_000, 20)
	upstream, upLog := server(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream must not be used", http.StatusTeapot)
	})
	mirror, mLog := server(t, serveBytes(data))
	c := newCache(t)
	url := upstream.URL + "/images/trixie/debian.qcow2"
	mirrors, err := ParseMirrors(upstream.URL + "/images/=" + mirror.URL + "/mirror/")
	require.NoError(t, err)
	r, err := c.Fetch(ctxT(t), url, sha256Of(data), WithMirrors(mirrors...))
	require.NoError(t, err)
	assert.Equal(t, Downloaded, r.Status)
	assert.Equal(t, url, r.URL)
	assert.Equal(t, mirror.URL+"/mirror/trixie/debian.qcow2", r.Source)
	assert.Empty(t, upLog.all())
	assert.Len(t, mLog.all(), 1)
	assert.Equal(t, c.EntryDir(url), filepath.Dir(r.Path), "keyed by the original URL")

	// The original URL is now a hit without any mirror, offline.
	r2, err := c.Fetch(ctxT(t), url, sha256Of(data), WithOffline())
	require.NoError(t, err)
	assert.Equal(t, FromCache, r2.Status)
	assert.Equal(t, r.Source, r2.Source)

	// A failing mirror names both URLs.
	dead, _ := server(t, func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	m2, _ := ParseMirrors(upstream.URL + "/=" + dead.URL + "/")
	_, err = c.Fetch(ctxT(t), upstream.URL+"/other.img", sha256Of(data), WithMirrors(m2...))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "downloading "+upstream.URL+"/other.img via mirror "+dead.URL+"/other.img: server returned 404")
}

func TestWithoutDigest(t *testing.T) {
	data := payload(7000, 21)
	srv, log := server(t, serveBytes(data))
	c := newCache(t)
	url := srv.URL + "/latest.img"
	_, err := c.Fetch(ctxT(t), url, "")
	require.ErrorContains(t, err, "no digest given")
	assert.Empty(t, log.all())

	r, err := c.Fetch(ctxT(t), url, "", WithoutDigest())
	require.NoError(t, err)
	assert.Equal(t, Downloaded, r.Status)
	assert.False(t, r.Verified)
	assert.Equal(t, sha256Of(data), r.Digest, "computed digest recorded")

	r, err = c.Fetch(ctxT(t), url, "", WithoutDigest())
	require.NoError(t, err)
	assert.Equal(t, FromCache, r.Status)
	assert.False(t, r.Verified)

	// Asking with the digest now: a hit, verified.
	r, err = c.Fetch(ctxT(t), url, sha256Of(data))
	require.NoError(t, err)
	assert.Equal(t, FromCache, r.Status)
	assert.True(t, r.Verified)

	// Another algorithm: the cached file is re-hashed locally, no download.
	r, err = c.Fetch(ctxT(t), url, sha512Of(data))
	require.NoError(t, err)
	assert.Equal(t, FromCache, r.Status)
	assert.Equal(t, sha512Of(data), r.Digest)
	assert.Len(t, log.all(), 1)
}

func TestChangedDigestRefetches(t *testing.T) {
	v1, v2 := payload(9000, 22), payload(9500, 23)
	var cur atomic.Pointer[[]byte]
	cur.Store(&v1)
	srv, log := server(t, func(w http.ResponseWriter, r *http.Request) { serveBytes(*cur.Load())(w, r) })
	c := newCache(t)
	url := srv.URL + "/rolling.img"
	_, err := c.Fetch(ctxT(t), url, sha256Of(v1))
	require.NoError(t, err)
	cur.Store(&v2)

	// The catalog's digest is newer than upstream's file: error, and the
	// good old entry is kept.
	_, err = c.Fetch(ctxT(t), url, sha256Of(payload(1, 0)))
	require.ErrorIs(t, err, ErrDigestMismatch)
	r, err := c.Fetch(ctxT(t), url, sha256Of(v1), WithOffline())
	require.NoError(t, err)
	assert.Equal(t, v1, readFile(t, r.Path))

	r, err = c.Fetch(ctxT(t), url, sha256Of(v2))
	require.NoError(t, err)
	assert.Equal(t, Downloaded, r.Status)
	assert.Equal(t, v2, readFile(t, r.Path))
	assert.Equal(t, 3, log.count("GET"))
}

func TestCorruptedEntryDetected(t *testing.T) {
	data := payload(64<<10, 24)
	srv, log := server(t, serveBytes(data))
	url := srv.URL + "/x.img"
	fetch := func(t *testing.T, c *Cache, opts ...Option) Result {
		r, err := c.Fetch(ctxT(t), url, sha256Of(data), opts...)
		require.NoError(t, err)
		assert.Equal(t, data, readFile(t, r.Path))
		return r
	}
	gets := func() int { return log.count("GET") }

	t.Run("truncated data is re-fetched", func(t *testing.T) {
		c := newCache(t)
		r := fetch(t, c)
		n := gets()
		require.NoError(t, os.Truncate(r.Path, 1000))
		assert.Equal(t, Downloaded, fetch(t, c).Status)
		assert.Equal(t, n+1, gets())
	})
	t.Run("same size other bytes: found by WithReverify", func(t *testing.T) {
		c := newCache(t)
		r := fetch(t, c)
		fi, _ := os.Stat(r.Path)
		flipByte(t, r.Path, 5000)
		require.NoError(t, os.Chtimes(r.Path, fi.ModTime(), fi.ModTime()))
		n := gets()
		r2, err := c.Fetch(ctxT(t), url, sha256Of(data))
		require.NoError(t, err)
		assert.Equal(t, FromCache, r2.Status, "size and mtime match: trusted without re-hashing")
		assert.Equal(t, Downloaded, fetch(t, c, WithReverify()).Status)
		assert.Equal(t, n+1, gets())
	})
	t.Run("changed mtime: re-hashed, still good, no download", func(t *testing.T) {
		c := newCache(t)
		r := fetch(t, c)
		n := gets()
		later := time.Now().Add(time.Hour)
		require.NoError(t, os.Chtimes(r.Path, later, later))
		assert.Equal(t, FromCache, fetch(t, c).Status)
		assert.Equal(t, n, gets())
		// meta re-stamped: the next hit needs no re-hash either.
		var m meta
		require.NoError(t, readJSON(filepath.Join(c.EntryDir(url), metaName), &m))
		assert.True(t, m.ModTime.Equal(later.Truncate(time.Microsecond)) || m.ModTime.Equal(later), "%v vs %v", m.ModTime, later)
	})
	t.Run("changed mtime and bytes: re-fetched", func(t *testing.T) {
		c := newCache(t)
		r := fetch(t, c)
		flipByte(t, r.Path, 10)
		n := gets()
		assert.Equal(t, Downloaded, fetch(t, c).Status)
		assert.Equal(t, n+1, gets())
	})
	t.Run("garbage meta.json is re-fetched", func(t *testing.T) {
		c := newCache(t)
		fetch(t, c)
		require.NoError(t, os.WriteFile(filepath.Join(c.EntryDir(url), metaName), []byte("{nope"), 0o644))
		n := gets()
		assert.Equal(t, Downloaded, fetch(t, c).Status)
		assert.Equal(t, n+1, gets())
	})
	t.Run("data without meta (crash before commit) is verified locally", func(t *testing.T) {
		c := newCache(t)
		fetch(t, c)
		require.NoError(t, os.Remove(filepath.Join(c.EntryDir(url), metaName)))
		n := gets()
		assert.Equal(t, FromCache, fetch(t, c).Status)
		assert.Equal(t, n, gets())
	})
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	b := make([]byte, 1)
	_, err = f.ReadAt(b, off)
	require.NoError(t, err)
	b[0] ^= 0xff
	_, err = f.WriteAt(b, off)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func TestConnectionRefusedIsRetried(t *testing.T) {
	srv, _ := server(t, serveBytes(nil))
	url := srv.URL + "/x"
	srv.Close()
	start := time.Now()
	_, err := newCache(t, WithRetry(3, 0)).Fetch(ctxT(t), url, sha256Of(nil))
	require.Error(t, err)
	assert.ErrorContains(t, err, "connection refused")
	assert.Contains(t, err.Error(), "gave up after 3 attempts")
	assert.Less(t, time.Since(start), 3*time.Second)
}

func TestBadInputs(t *testing.T) {
	c := newCache(t)
	_, err := c.Fetch(ctxT(t), "ftp://x/y", sha256Of(nil))
	assert.ErrorContains(t, err, "not an http(s) URL")
	_, err = c.Fetch(ctxT(t), "http://x/y", "sha1:abc")
	assert.ErrorContains(t, err, "unsupported algorithm")
	_, err = c.Fetch(ctxT(t), "http://x/y", sha256Of(nil), WithRetry(0, 0))
	assert.ErrorContains(t, err, "WithRetry")
	assert.False(t, errors.Is(err, ErrOffline))
}

// An interrupted download of a file that changed upstream: the resume
// carries If-Range with the old ETag, the server sends the new file whole
// (200), and we start over instead of splicing old and new bytes.
func TestResumeUsesIfRange(t *testing.T) {
	v1, v2 := payload(300_000, 50), payload(300_000, 51)
	var gets atomic.Int32
	var ifRange atomic.Value
	srv, log := server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && gets.Add(1) == 1 {
			w.Header().Set("ETag", `"v1"`)
			abortAfter(w, v1, 100_000)
			return
		}
		if r.Method == http.MethodGet && r.Header.Get("Range") != "" {
			ifRange.Store(r.Header.Get("If-Range"))
		}
		w.Header().Set("ETag", `"v2"`)
		serveBytes(v2)(w, r) // ServeContent honours If-Range
	})
	r, err := newCache(t).Fetch(ctxT(t), srv.URL+"/changing.img", sha256Of(v2))
	require.NoError(t, err)
	assert.Equal(t, v2, readFile(t, r.Path))
	assert.Equal(t, `"v1"`, ifRange.Load())
	reqs := log.all()
	require.Len(t, reqs, 4, "%v", reqs)
	assert.Equal(t, "GET", reqs[3], "started over")
}

func TestProgressBar(t *testing.T) {
	data := payload(256<<10, 52)
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		for off := 0; off < len(data); off += 32 << 10 {
			w.Write(data[off : off+32<<10])
			w.(http.Flusher).Flush()
			time.Sleep(20 * time.Millisecond)
		}
	})
	var out syncBuffer
	_, err := newCache(t).Fetch(ctxT(t), srv.URL+"/bar.img", sha256Of(data), WithProgress(&out), WithProgressBar(true))
	require.NoError(t, err)
	assert.Contains(t, out.String(), "bar.img")
	assert.Contains(t, out.String(), "100%")
	assert.Contains(t, out.String(), "256 KiB")
	assert.NotContains(t, out.String(), "downloading bar.img:", "a bar, not lines")
}
