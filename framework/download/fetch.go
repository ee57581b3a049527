package download

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cavaliergopher/grab/v3"
	"github.com/cenkalti/backoff/v5"
)

const userAgent = "guestcatalog-download/1"

// HTTPError is an HTTP status that ended an attempt.
type HTTPError struct {
	URL        string
	StatusCode int
	// RetryAfter is the server's Retry-After, if it sent one.
	RetryAfter time.Duration
}

func (e *HTTPError) Error() string {
	s := fmt.Sprintf("server returned %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (Retry-After %s)", e.RetryAfter)
	}
	return s
}

// errStalled ends an attempt that received nothing for the stall timeout.
var errStalled = errors.New("transfer stalled")

// restartError asks for a download from zero: the partial file cannot be
// trusted (the server ignored the Range, or the digest failed after a
// resume).
type restartError struct {
	err           error
	disableResume bool // the server cannot resume: never try again in this Fetch
}

func (e *restartError) Error() string { return e.err.Error() }
func (e *restartError) Unwrap() error { return e.err }

// retryAfterError carries a server's Retry-After to backoff.Retry while
// keeping the HTTP error as the message.
type retryAfterError struct {
	err error
	ra  *backoff.RetryAfterError
}

func (e *retryAfterError) Error() string   { return e.err.Error() }
func (e *retryAfterError) Unwrap() []error { return []error{e.err, e.ra} }

type dlResult struct {
	sum          Digest
	size         int64
	resumed      int64 // bytes reused from a partial file
	source       string
	etag         string
	lastModified string
}

// download fetches into data.part with retries, returning once data.part
// holds the verified file.
func (f *fetch) download(ctx context.Context) (dlResult, error) {
	src := Rewrite(f.url, f.cfg.mirrors)
	via := ""
	if src != f.url {
		via = " via mirror " + src
		f.log.Info("using mirror", "source", src)
	}
	eb := backoff.NewExponentialBackOff()
	eb.InitialInterval = f.cfg.initialBackoff
	eb.MaxInterval = f.cfg.maxBackoff
	var (
		attempts      int
		noResume      bool // the server ignored a Range once
		restartedOnce bool // a digest mismatch after a resume restarted from zero
	)
	op := func() (dlResult, error) {
		attempts++
		for {
			r, err := f.attempt(ctx, src, noResume)
			var rs *restartError
			if errors.As(err, &rs) && ctx.Err() == nil {
				again := false
				if rs.disableResume && !noResume {
					noResume, again = true, true
				} else if !rs.disableResume && !restartedOnce {
					restartedOnce, again = true, true
				}
				f.dropPartial() // never resume from it again
				if again {
					f.log.Warn("restarting the download from zero", "reason", rs.err)
					f.prog.note(fmt.Sprintf("restarting %s from zero: %v", f.name, rs.err))
					continue
				}
				err = rs.err
			}
			if err != nil {
				return r, f.classify(ctx, err)
			}
			return r, nil
		}
	}
	r, err := backoff.Retry(ctx, op,
		backoff.WithBackOff(eb),
		backoff.WithMaxTries(uint(f.cfg.maxAttempts)),
		backoff.WithMaxElapsedTime(f.cfg.maxElapsed),
		backoff.WithNotify(func(err error, wait time.Duration) {
			f.log.Warn("download attempt failed; retrying", "err", err, "wait", wait, "attempt", attempts)
			f.prog.note(fmt.Sprintf("retrying %s in %s: %v", f.name, wait.Round(time.Millisecond), err))
		}))
	if err == nil {
		f.prog.finish(r.size, r.resumed)
		return r, nil
	}
	var pe *backoff.PermanentError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if cerr := ctx.Err(); cerr != nil {
		return dlResult{}, fmt.Errorf("downloading %s: %w", f.url, cerr)
	}
	suffix := ""
	if attempts > 1 {
		suffix = fmt.Sprintf(" (gave up after %d attempts in %s)", attempts, time.Since(f.start).Round(time.Millisecond))
	}
	return dlResult{}, fmt.Errorf("downloading %s%s: %w%s", f.url, via, err, suffix)
}

func (f *fetch) dropPartial() {
	os.Remove(f.path(partName))
	os.Remove(f.path(partMetaName))
}

// classify marks err permanent, or transient (possibly with Retry-After).
func (f *fetch) classify(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return backoff.Permanent(err)
	}
	var he *HTTPError
	if errors.As(err, &he) {
		switch {
		case he.StatusCode == http.StatusTooManyRequests || he.StatusCode == http.StatusServiceUnavailable:
			if he.RetryAfter > f.cfg.maxRetryAfter {
				return backoff.Permanent(fmt.Errorf("%w; not waiting that long (limit %s)", err, f.cfg.maxRetryAfter))
			}
			if he.RetryAfter > 0 {
				return &retryAfterError{err: err, ra: &backoff.RetryAfterError{Duration: he.RetryAfter}}
			}
			return err
		case he.StatusCode == http.StatusRequestTimeout || he.StatusCode >= 500:
			return err
		}
		return backoff.Permanent(err)
	}
	if errors.Is(err, ErrDigestMismatch) {
		return backoff.Permanent(err)
	}
	if noSpace(err) {
		// A full disk does not empty itself between attempts, and the
		// partial file is what fills it: end now, keep nothing.
		f.dropPartial()
		return backoff.Permanent(err)
	}
	if transient(err) {
		return err
	}
	return backoff.Permanent(err)
}

// noSpace: the cache's filesystem is full (or over quota).
func noSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
		strings.Contains(err.Error(), "no space left on device")
}

// transient: network trouble that a later attempt may not meet.
func transient(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return !dns.IsNotFound
	}
	switch {
	case errors.Is(err, errStalled),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ETIMEDOUT),
		errors.Is(err, grab.ErrBadLength):
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	// http2 stream resets and the like do not wrap a syscall error.
	msg := err.Error()
	return strings.Contains(msg, "connection reset") || strings.Contains(msg, "stream error") ||
		strings.Contains(msg, "server closed") || strings.Contains(msg, "unexpected EOF")
}

// hashingClient is grab's HTTP client: it feeds every byte of a GET body to
// the hash pipe as grab reads it, so the digest is ready when the file is.
type hashingClient struct {
	c    *http.Client
	pipe *hashPipe
}

func (h hashingClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := h.c.Do(req)
	if err == nil && req.Method == http.MethodGet {
		resp.Body = &hashReader{rc: resp.Body, pipe: h.pipe}
	}
	return resp, err
}

// attempt is one transfer into data.part. When noResume is false and a
// partial file exists, grab resumes it (HEAD, then GET with Range); we
// accept the resumed response only if it is a 206 starting where the
// partial ends, hash the partial from disk, then the body as it streams.
func (f *fetch) attempt(ctx context.Context, src string, noResume bool) (dlResult, error) {
	part, pmPath := f.path(partName), f.path(partMetaName)
	if noResume {
		f.dropPartial()
	}
	var prior int64
	var pm partMeta
	if fi, err := os.Stat(part); err == nil {
		prior = fi.Size()
		if readJSON(pmPath, &pm) != nil || pm.URL != f.url {
			pm = partMeta{}
		}
	}
	algo := SHA256
	if !f.want.IsZero() {
		algo = f.want.Algo
	}
	pipe := newHashPipe(newHash(algo))
	pipe.inline = f.cfg.inlineHash
	defer pipe.finish()
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	req, err := grab.NewRequest(part, src)
	if err != nil {
		return dlResult{}, err
	}
	req = req.WithContext(actx)
	req.NoResume = noResume
	req.NoCreateDirectories = true
	req.IgnoreRemoteTime = true // our mtime is the commit time, recorded in meta.json
	req.BufferSize = 256 << 10
	if prior > 0 {
		// A changed upstream file must not be spliced onto the old prefix:
		// with If-Range the server sends the whole new file (200) instead.
		if pm.ETag != "" && !strings.HasPrefix(pm.ETag, "W/") {
			req.HTTPRequest.Header.Set("If-Range", pm.ETag)
		} else if pm.LastModified != "" {
			req.HTTPRequest.Header.Set("If-Range", pm.LastModified)
		}
	}
	var (
		resumed int64
		began   bool
	)
	req.BeforeCopy = func(resp *grab.Response) error {
		hr := resp.HTTPResponse
		if resp.DidResume {
			off := resp.BytesComplete()
			if hr.StatusCode != http.StatusPartialContent {
				return &restartError{disableResume: true, err: fmt.Errorf(
					"server answered a Range request for bytes %d- with %q instead of 206 Partial Content", off, hr.Status)}
			}
			start, err := contentRangeStart(hr.Header.Get("Content-Range"))
			if err != nil || start != off {
				return &restartError{disableResume: true, err: fmt.Errorf(
					"server answered a Range request for bytes %d- with Content-Range %q", off, hr.Header.Get("Content-Range"))}
			}
			fh, err := os.Open(part)
			if err != nil {
				return err
			}
			n, err := pipe.writeDirect(io.LimitReader(fh, off))
			fh.Close()
			if err == nil && n != off {
				err = fmt.Errorf("partial file shrank to %d bytes while resuming at %d", n, off)
			}
			if err != nil {
				return err
			}
			resumed = off
			f.log.Info("resuming download", "at", off)
		} else {
			if hr.StatusCode != http.StatusOK {
				return fmt.Errorf("unexpected response %q to a plain GET", hr.Status)
			}
			// Validators for a later resume (If-Range).
			_ = writeJSONAtomic(pmPath, partMeta{URL: f.url, ETag: hr.Header.Get("ETag"), LastModified: hr.Header.Get("Last-Modified")})
		}
		began = true
		pipe.start()
		f.prog.begin(resp.Size(), resumed)
		return nil
	}

	client := &grab.Client{HTTPClient: hashingClient{c: f.cfg.client, pipe: pipe}, UserAgent: userAgent}
	resp := client.Do(req)
	wb := newWriteBehind(part) // grab created the file (or failed) by now
	f.watch(resp, cancel, wb)
	wb.close()
	err = resp.Err()
	pipe.finish()
	if err != nil {
		if errors.As(err, new(*restartError)) {
			return dlResult{}, err
		}
		if cerr := ctx.Err(); cerr != nil {
			return dlResult{}, cerr
		}
		if cause := context.Cause(actx); errors.Is(cause, errStalled) {
			return dlResult{}, cause
		}
		var sc grab.StatusCodeError
		if errors.As(err, &sc) {
			he := &HTTPError{URL: src, StatusCode: int(sc)}
			if resp.HTTPResponse != nil {
				he.RetryAfter = parseRetryAfter(resp.HTTPResponse.Header.Get("Retry-After"), time.Now())
			}
			return dlResult{}, he
		}
		if errors.Is(err, grab.ErrBadLength) {
			// The partial is longer than the file the server has now.
			return dlResult{}, &restartError{err: fmt.Errorf("partial file does not fit the server's file: %w", err)}
		}
		return dlResult{}, err
	}
	if !began {
		// grab saw a partial file as long as the server's and sent no GET:
		// its bytes were never checked. Hash them all now.
		if !resp.DidResume {
			return dlResult{}, errors.New("grab finished without a transfer")
		}
		fh, err := os.Open(part)
		if err != nil {
			return dlResult{}, err
		}
		resumed, err = pipe.writeDirect(fh)
		fh.Close()
		if err != nil {
			return dlResult{}, err
		}
	}
	fi, err := os.Stat(part)
	if err != nil {
		return dlResult{}, err
	}
	r := dlResult{sum: digestOf(algo, pipe.h), size: fi.Size(), resumed: resumed, source: src}
	if hr := resp.HTTPResponse; hr != nil {
		r.etag, r.lastModified = hr.Header.Get("ETag"), hr.Header.Get("Last-Modified")
	}
	if !f.want.IsZero() && r.sum != f.want {
		f.dropPartial() // bad bytes never stay
		mm := &DigestMismatchError{URL: src, Expected: f.want.String(), Actual: r.sum.String()}
		if resumed > 0 {
			return dlResult{}, &restartError{err: mm}
		}
		return dlResult{}, mm
	}
	return r, nil
}

// watch follows a transfer until it ends: progress, the stall watchdog,
// and early write-back of what is on disk.
func (f *fetch) watch(resp *grab.Response, cancel context.CancelCauseFunc, wb *writeBehind) {
	tick := min(200*time.Millisecond, f.cfg.progressEvery/2, f.cfg.stallTimeout/4)
	t := time.NewTicker(max(tick, 5*time.Millisecond))
	defer t.Stop()
	last, lastChange := int64(-1), time.Now()
	for {
		select {
		case <-resp.Done:
			return
		case now := <-t.C:
			n := resp.BytesComplete()
			if n != last {
				last, lastChange = n, now
			} else if now.Sub(lastChange) > f.cfg.stallTimeout {
				f.log.Warn("transfer stalled", "bytes", n, "for", now.Sub(lastChange))
				cancel(fmt.Errorf("%w: no data for %s", errStalled, f.cfg.stallTimeout))
			}
			f.prog.update(n, resp.Size())
			wb.advance(n)
		}
	}
}

// contentRangeStart parses the first byte of "bytes 100-199/200".
func contentRangeStart(v string) (int64, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !ok {
		return 0, fmt.Errorf("bad Content-Range %q", v)
	}
	first, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, fmt.Errorf("bad Content-Range %q", v)
	}
	return strconv.ParseInt(strings.TrimSpace(first), 10, 64)
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 when absent/bad.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now).Round(time.Second)
	}
	return 0
}
