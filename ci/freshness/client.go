package freshness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// ErrNotFound is returned (wrapped in an *HTTPError) for a 404 or 410.
var ErrNotFound = errors.New("not found upstream")

// HTTPError is an HTTP answer that is not a success.
type HTTPError struct {
	URL    string
	Status int
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("GET %s: %d %s", e.URL, e.Status, http.StatusText(e.Status))
}

// Is makes errors.Is(err, ErrNotFound) true for 404 and 410.
func (e *HTTPError) Is(target error) bool {
	return target == ErrNotFound && (e.Status == http.StatusNotFound || e.Status == http.StatusGone)
}

// Mirror rewrites URLs that start with Prefix to start with Replacement.
type Mirror struct {
	Prefix, Replacement string
}

// ParseMirrors parses PREFIX=MIRROR specs (the CLI's --mirror flags).
func ParseMirrors(specs []string) ([]Mirror, error) {
	var out []Mirror
	for _, s := range specs {
		p, r, ok := strings.Cut(s, "=")
		if !ok || p == "" || r == "" {
			return nil, fmt.Errorf("mirror %q: want PREFIX=MIRROR, e.g. https://cloud.debian.org/=http://mirror.local/debian-cloud/", s)
		}
		out = append(out, Mirror{Prefix: p, Replacement: r})
	}
	return out, nil
}

// Client talks to upstream. The zero value works; set Mirrors or BaseURL to
// fetch from elsewhere than the URLs the catalog names.
type Client struct {
	// HTTP is the client used (nil: one with a 2-minute timeout).
	HTTP *http.Client
	// Mirrors rewrite URLs by prefix (the longest matching prefix wins).
	Mirrors []Mirror
	// BaseURL, when set, stands for every upstream host: https://HOST/PATH
	// is fetched as BaseURL/HOST/PATH (a local mirror tree, a test server).
	BaseURL string
	// Logger receives one debug line per request (nil: silent).
	Logger *slog.Logger
	// Attempts for network errors, 429 and 5xx answers (default 3).
	Attempts int
	// RetryWait is the first wait between attempts, doubled each time
	// (default 2s).
	RetryWait time.Duration
	// MaxBody caps a metadata file (default 64 MiB).
	MaxBody int64

	mu   sync.Mutex
	memo map[string]*memoEntry
}

type memoEntry struct {
	once sync.Once
	body []byte
	err  error
}

// Resolve returns the URL actually fetched for an upstream URL.
func (c *Client) Resolve(u string) string {
	best := -1
	for i, m := range c.Mirrors {
		if strings.HasPrefix(u, m.Prefix) && (best < 0 || len(m.Prefix) > len(c.Mirrors[best].Prefix)) {
			best = i
		}
	}
	if best >= 0 {
		return c.Mirrors[best].Replacement + strings.TrimPrefix(u, c.Mirrors[best].Prefix)
	}
	if c.BaseURL != "" {
		if p, err := url.Parse(u); err == nil && p.Host != "" {
			rest := p.EscapedPath()
			if p.RawQuery != "" {
				rest += "?" + p.RawQuery
			}
			return strings.TrimSuffix(c.BaseURL, "/") + "/" + p.Host + rest
		}
	}
	return u
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 2 * time.Minute}
}

func (c *Client) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// do sends a request built by mk, retrying network errors, 429 and 5xx.
// The caller closes the body of the response.
func (c *Client) do(ctx context.Context, method, upstream string, header http.Header) (*http.Response, error) {
	target := c.Resolve(upstream)
	attempts := c.Attempts
	if attempts <= 0 {
		attempts = 3
	}
	wait := c.RetryWait
	if wait <= 0 {
		wait = 2 * time.Second
	}
	var lastErr error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(wait):
			}
			wait *= 2
		}
		req, err := http.NewRequestWithContext(ctx, method, target, nil)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, target, err)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		req.Header.Set("User-Agent", "guestcatalog-freshness/1")
		resp, err := c.http().Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			lastErr = err // a *url.Error: it names the method and the URL
			c.logger().Debug("request failed", "method", method, "url", target, "attempt", i+1, "err", err)
			continue
		}
		c.logger().Debug("request", "method", method, "url", target, "status", resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			resp.Body.Close()
			lastErr = &HTTPError{URL: target, Status: resp.StatusCode}
			continue
		}
		return resp, nil
	}
	return nil, lastErr
}

// Get returns the body of a metadata file. Answers are remembered for the
// life of the Client, so each file is fetched once per run.
func (c *Client) Get(ctx context.Context, upstream string) ([]byte, error) {
	c.mu.Lock()
	if c.memo == nil {
		c.memo = map[string]*memoEntry{}
	}
	e, ok := c.memo[upstream]
	if !ok {
		e = &memoEntry{}
		c.memo[upstream] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.body, e.err = c.get(ctx, upstream) })
	return e.body, e.err
}

func (c *Client) get(ctx context.Context, upstream string) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, upstream, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &HTTPError{URL: c.Resolve(upstream), Status: resp.StatusCode}
	}
	limit := c.MaxBody
	if limit <= 0 {
		limit = 64 << 20
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", c.Resolve(upstream), err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("GET %s: larger than %d bytes", c.Resolve(upstream), limit)
	}
	return b, nil
}

// URLState says whether an image URL is served.
type URLState string

// URL states.
const (
	URLOK    URLState = "ok"    // 2xx (after redirects)
	URLDead  URLState = "dead"  // 4xx: gone, or refused
	URLError URLState = "error" // no answer, or 5xx after retries
)

// ProbeResult is what Probe found.
type ProbeResult struct {
	State URLState `json:"state"`
	// Status is the final HTTP status (0 when there was no answer).
	Status int `json:"status,omitempty"`
	// Method is HEAD, or GET when the server refused HEAD and a 1-byte
	// ranged GET answered instead.
	Method string `json:"method,omitempty"`
	Err    string `json:"error,omitempty"`
}

// Probe checks that a URL is served: HEAD, following redirects; a server
// that refuses HEAD (403, 405, 501) is asked for the first byte with a
// ranged GET instead.
func (c *Client) Probe(ctx context.Context, upstream string) ProbeResult {
	res := c.probe(ctx, http.MethodHead, upstream, nil)
	if res.Status == http.StatusMethodNotAllowed || res.Status == http.StatusNotImplemented || res.Status == http.StatusForbidden {
		res = c.probe(ctx, http.MethodGet, upstream, http.Header{"Range": {"bytes=0-0"}})
	}
	return res
}

func (c *Client) probe(ctx context.Context, method, upstream string, h http.Header) ProbeResult {
	resp, err := c.do(ctx, method, upstream, h)
	if err != nil {
		var he *HTTPError
		if errors.As(err, &he) {
			return ProbeResult{State: URLError, Status: he.Status, Method: method, Err: err.Error()}
		}
		return ProbeResult{State: URLError, Method: method, Err: err.Error()}
	}
	resp.Body.Close()
	res := ProbeResult{Status: resp.StatusCode, Method: method}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		res.State = URLOK
	default:
		res.State = URLDead
	}
	return res
}

// sortedKeys returns the keys of a map in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
