package download

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// EnvCacheDir overrides the cache directory (the --cache-dir flag wins).
const EnvCacheDir = "GUESTCATALOG_CACHE"

// ErrOffline is wrapped by the error of a Fetch that needs the network
// while offline (WithOffline).
var ErrOffline = errors.New("offline")

// Status says how Fetch obtained the file.
type Status int

const (
	// Downloaded: transferred from the start and verified.
	Downloaded Status = iota + 1
	// Resumed: an interrupted download was continued and verified.
	Resumed
	// FromCache: found in the cache; no network was used.
	FromCache
)

func (s Status) String() string {
	switch s {
	case Downloaded:
		return "downloaded"
	case Resumed:
		return "resumed"
	case FromCache:
		return "from cache"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Result is a verified file in the cache.
type Result struct {
	// Path is the file to use: the decompressed image when the URL names a
	// compressed one (.xz, .gz, .zst, .bz2), else the file as published.
	Path   string
	Status Status
	// URL is the URL asked for (the cache key); Source the URL the bytes
	// came from, which differs when a mirror was used.
	URL    string
	Source string
	// Digest of the file as published ("algo:hex"). Verified is false when
	// the fetch had no digest (WithoutDigest): Digest was then computed.
	Digest   string
	Verified bool
	// Size of the file as published.
	Size int64
	// DataPath is the verified file as published (the compressed one when
	// Path is decompressed); Decompressed names the format undone, if any.
	DataPath     string
	Decompressed string
	Duration     time.Duration
}

// Cache is a directory of verified downloads, safe for concurrent use by
// goroutines and processes.
type Cache struct {
	cfg  config
	root string
}

// New returns a cache; opts are the defaults of every Fetch.
func New(opts ...Option) (*Cache, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.dir == "" {
		return nil, errors.New("download cache: no directory (WithCacheDir; framework/config.DefaultCacheDir)")
	}
	abs, err := filepath.Abs(cfg.dir)
	if err != nil {
		return nil, fmt.Errorf("cache directory %s: %w", cfg.dir, err)
	}
	cfg.dir = abs
	if cfg.client == nil {
		cfg.client = defaultHTTPClient()
	}
	return &Cache{cfg: cfg, root: filepath.Join(abs, "downloads")}, nil
}

func defaultHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// The digest covers the bytes as published: never let the transport
	// undo a Content-Encoding (and Ranges refer to the encoded bytes).
	tr.DisableCompression = true
	tr.ResponseHeaderTimeout = time.Minute
	tr.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return &http.Client{Transport: tr}
}

// Dir is the directory holding the entries (<cache dir>/downloads).
func (c *Cache) Dir() string { return c.root }

// Key is the entry name of a URL: 32 hex digits of its sha256.
func Key(rawURL string) string {
	sum := sha256.Sum256([]byte(rawURL))
	return hex.EncodeToString(sum[:])[:32]
}

// EntryDir is the directory of rawURL's entry.
func (c *Cache) EntryDir(rawURL string) string { return filepath.Join(c.root, Key(rawURL)) }

// Fetch returns the file at rawURL from the cache, downloading it first if
// needed, verified against digest ("sha256:…" or "sha512:…"; empty only
// with WithoutDigest). opts override the Cache's for this call.
func (c *Cache) Fetch(ctx context.Context, rawURL, digest string, opts ...Option) (Result, error) {
	start := time.Now()
	cfg := c.cfg
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return Result{}, fmt.Errorf("fetching %s: %w", rawURL, err)
		}
	}
	var want Digest
	if digest != "" {
		d, err := ParseDigest(digest)
		if err != nil {
			return Result{}, fmt.Errorf("fetching %s: %w", rawURL, err)
		}
		want = d
	} else if !cfg.allowNoDigest {
		return Result{}, fmt.Errorf("fetching %s: no digest given (a template without one must say noDigest; callers pass WithoutDigest)", rawURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Result{}, fmt.Errorf("fetching %s: not an http(s) URL", rawURL)
	}
	f := &fetch{
		c: c, cfg: cfg, url: rawURL, want: want, start: start,
		dir: c.EntryDir(rawURL),
		log: cfg.logger.With("url", rawURL),
	}
	f.name = path.Base(u.Path)
	f.format, f.origName = compressionOf(u.Path)
	if !cfg.decompress {
		f.format = ""
	}
	return f.run(ctx)
}

// fetch is one Fetch call.
type fetch struct {
	c        *Cache
	cfg      config
	url      string
	want     Digest
	dir      string
	name     string
	format   string // compression to undo, "" for none
	origName string
	start    time.Time
	log      *slog.Logger
	prog     progress
}

func (f *fetch) path(name string) string { return filepath.Join(f.dir, name) }

type verdict int

const (
	miss       verdict = iota // nothing usable
	hit                       // data matches meta (size, mtime) and the wanted digest
	needRehash                // data may be good: hash it to know (mtime changed, other algo, no meta)
	stale                     // a good entry for another digest (upstream or catalog changed)
	corrupt                   // data is bad or missing: remove the entry
)

func (v verdict) String() string {
	return [...]string{"miss", "hit", "need re-hash", "stale", "corrupt"}[v]
}

func (f *fetch) run(ctx context.Context) (Result, error) {
	f.prog = newProgress(f.cfg, f.name)
	var once sync.Once
	onWait := func() {
		once.Do(func() {
			f.prog.note(fmt.Sprintf("waiting for another download of %s", f.name))
			f.log.Info("waiting for the entry lock held by another download", "dir", f.dir)
		})
	}
	// Fast path: a shared lock, two stats, no hashing.
	unlock, err := lockEntry(ctx, f.dir, false, f.cfg.lockPoll, onWait)
	if err != nil {
		return Result{}, fmt.Errorf("fetching %s: %w", f.url, err)
	}
	m, v, why := f.check()
	if v == hit && !f.cfg.reverify && f.decompressedOK(m) {
		f.touch()
		unlock()
		return f.result(m, FromCache), nil
	}
	unlock()
	f.log.Debug("cache entry needs work", "verdict", v, "reason", why)

	unlock, err = lockEntry(ctx, f.dir, true, f.cfg.lockPoll, onWait)
	if err != nil {
		return Result{}, fmt.Errorf("fetching %s: %w", f.url, err)
	}
	defer unlock()

	// Someone may have committed while we waited.
	m, v, why = f.check()
	if v == hit && f.cfg.reverify {
		v, why = needRehash, "re-verification asked"
	}
	if v == needRehash {
		f.log.Info("verifying cached file", "reason", why)
		f.prog.note(fmt.Sprintf("verifying cached %s (%s)", f.name, why))
		nm, ok, err := f.rehash(ctx, m)
		if err != nil {
			return Result{}, fmt.Errorf("verifying cached %s: %w", f.url, err)
		}
		switch {
		case ok:
			m, v = nm, hit
		case m != nil && m.Verified && !f.want.IsZero() && !strings.HasPrefix(m.Digest, f.want.Algo+":"):
			// Verified once against another algorithm's digest: the file is
			// not what is wanted now, which does not make it corrupt.
			v, why = stale, "cached file does not match "+f.want.String()
		default:
			v, why = corrupt, "cached file does not match its digest"
		}
	}
	if v == corrupt {
		f.log.Warn("removing corrupt cache entry", "reason", why)
		f.invalidate()
	}
	if v == hit {
		m, err = f.ensureDecompressed(ctx, m)
		if err != nil {
			return Result{}, err
		}
		f.touch()
		return f.result(m, FromCache), nil
	}
	if f.cfg.offline {
		return Result{}, f.offlineError(v, why, m)
	}
	// A transfer that ended while we waited for the lock failed its
	// digest: that is our verdict too (one transfer, one verdict).
	if mm := f.sharedMismatch(); mm != nil {
		f.log.Info("sharing the digest mismatch of the transfer we waited for", "actual", mm.Actual)
		return Result{}, fmt.Errorf("downloading %s: %w (verdict of a concurrent transfer)", f.url, mm)
	}

	dl, err := f.download(ctx)
	if err != nil {
		var mm *DigestMismatchError
		if errors.As(err, &mm) && ctx.Err() == nil {
			rec := mismatchRecord{URL: f.url, Source: mm.URL, Expected: mm.Expected, Actual: mm.Actual, At: time.Now().UTC()}
			if werr := writeJSONAtomic(f.path(verdictName), &rec); werr != nil {
				f.log.Warn("recording the digest mismatch", "err", werr)
			}
		}
		f.tidy()
		return Result{}, err
	}
	t0 := time.Now()
	m, err = f.commit(dl)
	if err != nil {
		return Result{}, fmt.Errorf("storing %s: %w", f.url, err)
	}
	f.log.Info("downloaded", "size", dl.size, "resumed", dl.resumed, "took", time.Since(f.start), "commit", time.Since(t0))
	m, err = f.ensureDecompressed(ctx, m)
	if err != nil {
		return Result{}, err
	}
	st := Downloaded
	if dl.resumed > 0 {
		st = Resumed
	}
	return f.result(m, st), nil
}

// sharedMismatch returns the mismatch recorded by a transfer that ended
// after this fetch began, for the digest this fetch wants.
func (f *fetch) sharedMismatch() *DigestMismatchError {
	var rec mismatchRecord
	if err := readJSON(f.path(verdictName), &rec); err != nil {
		return nil
	}
	if rec.URL != f.url || f.want.IsZero() || rec.Expected != f.want.String() || rec.At.Before(f.start) {
		return nil
	}
	return &DigestMismatchError{URL: rec.Source, Expected: rec.Expected, Actual: rec.Actual}
}

func (f *fetch) offlineError(v verdict, why string, m *meta) error {
	hint := "fetch it on a connected machine with `catalog pull <template>` and copy its cache directory here, " +
		"or drop --offline and point --mirror PREFIX=MIRROR (or " + EnvMirrors + ") at a reachable copy"
	switch v {
	case stale:
		return fmt.Errorf("%w: %s is cached with digest %s but %s is wanted (%s); %s",
			ErrOffline, f.url, m.Digest, f.want, f.c.root, hint)
	case corrupt:
		return fmt.Errorf("%w: the cached copy of %s was corrupt (%s) and has been removed (%s); %s",
			ErrOffline, f.url, why, f.c.root, hint)
	}
	return fmt.Errorf("%w: %s is not in the cache (%s); %s", ErrOffline, f.url, f.c.root, hint)
}

// check looks at the committed entry without hashing anything.
func (f *fetch) check() (*meta, verdict, string) {
	var m meta
	err := readJSON(f.path(metaName), &m)
	if errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(f.path(dataName)); err == nil && !f.want.IsZero() {
			return nil, needRehash, "data without meta.json"
		}
		return nil, miss, "not cached"
	}
	if err != nil {
		return nil, corrupt, err.Error()
	}
	if m.Version != metaVersion || m.URL != f.url {
		return nil, corrupt, fmt.Sprintf("meta.json is for %q (version %d)", m.URL, m.Version)
	}
	have, err := ParseDigest(m.Digest)
	if err != nil {
		return nil, corrupt, "meta.json: " + err.Error()
	}
	fi, err := os.Stat(f.path(dataName))
	if err != nil {
		return &m, corrupt, "data file missing"
	}
	if fi.Size() != m.Size {
		return &m, corrupt, fmt.Sprintf("data is %d bytes, %d recorded", fi.Size(), m.Size)
	}
	if !f.want.IsZero() && have.Algo == f.want.Algo && have.Hex != f.want.Hex {
		return &m, stale, fmt.Sprintf("cached digest %s", m.Digest)
	}
	if !fi.ModTime().Equal(m.ModTime) {
		return &m, needRehash, "modification time changed"
	}
	if !f.want.IsZero() && have.Algo != f.want.Algo {
		return &m, needRehash, "cached digest uses " + have.Algo
	}
	return &m, hit, ""
}

// decompressedOK: the decompressed file (if one is due) matches its record.
func (f *fetch) decompressedOK(m *meta) bool {
	if f.format == "" {
		return true
	}
	d := m.Decompressed
	if d == nil || d.Format != f.format {
		return false
	}
	fi, err := os.Stat(f.path(d.Name))
	return err == nil && fi.Size() == d.Size && fi.ModTime().Equal(d.ModTime)
}

// rehash hashes data and compares it with the wanted digest (or, without
// one, the recorded digest). A match re-stamps meta.json.
func (f *fetch) rehash(ctx context.Context, m *meta) (*meta, bool, error) {
	expect := f.want
	if expect.IsZero() {
		if m == nil {
			return nil, false, nil
		}
		d, err := ParseDigest(m.Digest)
		if err != nil {
			return nil, false, nil
		}
		expect = d
	}
	got, size, err := hashFile(ctx, f.path(dataName), expect.Algo)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if got != expect {
		f.log.Warn("cached file failed verification", "expected", expect.String(), "actual", got.String())
		return nil, false, nil
	}
	nm := meta{Version: metaVersion, URL: f.url, FetchedAt: time.Now().UTC()}
	if m != nil {
		nm = *m
	}
	nm.Digest = got.String()
	// Without a wanted digest, expect was the recorded one: its status stays.
	nm.Verified = !f.want.IsZero() || (m != nil && m.Verified)
	fi, err := os.Stat(f.path(dataName))
	if err != nil {
		return nil, false, err
	}
	nm.Size, nm.ModTime = size, fi.ModTime()
	if err := writeJSONAtomic(f.path(metaName), &nm); err != nil {
		return nil, false, err
	}
	return &nm, true, nil
}

// invalidate removes the committed entry: meta first, so no reader sees a
// meta.json describing a file that is going away.
func (f *fetch) invalidate() {
	for _, n := range []string{metaName, dataName, decompressedName, decompressedName + tmpSuffix, metaName + tmpSuffix} {
		if err := os.Remove(f.path(n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			f.log.Warn("removing cache file", "err", err)
		}
	}
}

// commit makes a verified data.part the entry's data.
func (f *fetch) commit(dl dlResult) (*meta, error) {
	part := f.path(partName)
	if err := syncFile(part); err != nil {
		return nil, err
	}
	// The old entry (if any) stops being valid before its files change.
	for _, n := range []string{metaName, decompressedName} {
		if err := os.Remove(f.path(n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	if err := os.Rename(part, f.path(dataName)); err != nil {
		return nil, err
	}
	os.Remove(f.path(partMetaName))
	os.Remove(f.path(verdictName))
	if err := syncDir(f.dir); err != nil {
		return nil, err
	}
	fi, err := os.Stat(f.path(dataName))
	if err != nil {
		return nil, err
	}
	m := &meta{
		Version: metaVersion, URL: f.url, Digest: dl.sum.String(), Verified: !f.want.IsZero(),
		Size: fi.Size(), ModTime: fi.ModTime(), FetchedAt: time.Now().UTC(),
		ETag: dl.etag, LastModified: dl.lastModified,
	}
	if dl.source != f.url {
		m.Source = dl.source
	}
	if err := writeJSONAtomic(f.path(metaName), m); err != nil {
		return nil, err
	}
	return m, nil
}

// ensureDecompressed makes sure the decompressed file (if one is due) is
// present and matches its record, decompressing the verified data again
// if not: no network is involved.
func (f *fetch) ensureDecompressed(ctx context.Context, m *meta) (*meta, error) {
	if f.format == "" {
		return m, nil
	}
	if d := m.Decompressed; d != nil && d.Format == f.format {
		fi, err := os.Stat(f.path(d.Name))
		if err == nil && fi.Size() == d.Size {
			if fi.ModTime().Equal(d.ModTime) && !f.cfg.reverify {
				return m, nil
			}
			got, _, err := hashFile(ctx, f.path(d.Name), SHA256)
			if err != nil {
				return nil, fmt.Errorf("verifying decompressed %s: %w", f.url, err)
			}
			if got.Hex == d.SHA256 {
				nm := *m
				nd := *d
				nd.ModTime = fi.ModTime()
				nm.Decompressed = &nd
				if err := writeJSONAtomic(f.path(metaName), &nm); err != nil {
					return nil, err
				}
				return &nm, nil
			}
		}
		f.log.Warn("decompressed file does not match its record; decompressing again")
	}
	f.prog.note(fmt.Sprintf("decompressing %s (%s)", f.name, f.format))
	t0 := time.Now()
	dm, err := decompressFile(ctx, f.path(dataName), f.path(decompressedName), f.format)
	if err != nil {
		return nil, fmt.Errorf("decompressing %s (%s): %w", f.url, f.format, err)
	}
	dm.OriginalName = f.origName
	f.log.Info("decompressed", "format", f.format, "size", dm.Size, "took", time.Since(t0))
	nm := *m
	nm.Decompressed = dm
	if err := writeJSONAtomic(f.path(metaName), &nm); err != nil {
		return nil, fmt.Errorf("storing %s: %w", f.url, err)
	}
	return &nm, nil
}

// tidy removes the entry directory after a failed first download that
// left nothing worth keeping (no data, no partial file). We hold the lock;
// a waiter on it notices the unlinked lock file and starts over.
func (f *fetch) tidy() {
	des, err := os.ReadDir(f.dir)
	if err != nil {
		return
	}
	for _, de := range des {
		switch n := de.Name(); {
		case n == lockName, n == partMetaName, strings.HasSuffix(n, tmpSuffix):
		default:
			return
		}
	}
	if err := removeEntry(f.dir); err != nil {
		f.log.Debug("removing empty cache entry", "err", err)
	}
}

// touch records a use: meta.json's mtime is the entry's last use.
func (f *fetch) touch() {
	now := time.Now()
	if err := os.Chtimes(f.path(metaName), now, now); err != nil {
		f.log.Debug("recording last use", "err", err)
	}
}

func (f *fetch) result(m *meta, st Status) Result {
	r := Result{
		Path: f.path(dataName), Status: st, URL: f.url, Source: f.url,
		Digest: m.Digest, Verified: m.Verified || !f.want.IsZero(), Size: m.Size,
		DataPath: f.path(dataName), Duration: time.Since(f.start),
	}
	if m.Source != "" {
		r.Source = m.Source
	}
	if f.format != "" && m.Decompressed != nil {
		r.Path = f.path(m.Decompressed.Name)
		r.Decompressed = m.Decompressed.Format
	}
	return r
}

// hashFile hashes a whole file.
func hashFile(ctx context.Context, name, algo string) (Digest, int64, error) {
	fh, err := os.Open(name)
	if err != nil {
		return Digest{}, 0, err
	}
	defer fh.Close()
	h := newHash(algo)
	n, err := io.CopyBuffer(h, ctxReader{ctx, fh}, make([]byte, 1<<20))
	if err != nil {
		return Digest{}, n, err
	}
	return digestOf(algo, h), n, nil
}

// ctxReader fails reads once ctx is done, so long local work is cancellable.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(b []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(b)
}
