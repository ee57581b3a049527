package download

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// Option configures a Cache (given to New, it is the default for every
// Fetch) or a single Fetch. Options that get bad values fail.
type Option func(*config) error

type config struct {
	dir            string
	client         *http.Client
	logger         *slog.Logger
	mirrors        []Mirror
	offline        bool
	allowNoDigest  bool
	reverify       bool
	progress       io.Writer
	progressEvery  time.Duration
	progressBar    *bool // nil: auto (a bar on a terminal)
	maxAttempts    int
	maxElapsed     time.Duration
	initialBackoff time.Duration
	maxBackoff     time.Duration
	maxRetryAfter  time.Duration
	stallTimeout   time.Duration
	lockPoll       time.Duration
	decompress     bool
	inlineHash     bool
}

func defaultConfig() config {
	return config{
		logger:         slog.New(slog.DiscardHandler),
		progressEvery:  5 * time.Second,
		maxAttempts:    5,
		maxElapsed:     15 * time.Minute,
		initialBackoff: time.Second,
		maxBackoff:     30 * time.Second,
		maxRetryAfter:  2 * time.Minute,
		stallTimeout:   2 * time.Minute,
		lockPoll:       100 * time.Millisecond,
		decompress:     true,
	}
}

// WithCacheDir sets the cache directory; entries live in <dir>/downloads.
// "" (an unset flag) keeps the default, DefaultCacheDir(). Only
// meaningful for New.
func WithCacheDir(dir string) Option {
	return func(c *config) error {
		c.dir = dir
		return nil
	}
}

// WithHTTPClient sets the HTTP client (proxies, TLS, tests). The default
// client takes proxies from the environment and asks for identity encoding.
// Only meaningful for New.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) error {
		if hc == nil {
			return errors.New("WithHTTPClient: nil client")
		}
		c.client = hc
		return nil
	}
}

// WithLogger logs what happens (debug: cache decisions; info: downloads,
// retries). Silent by default and with nil.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		c.logger = l
		return nil
	}
}

// WithMirrors rewrites URLs before downloading (see Rewrite). The cache key
// stays the original URL.
func WithMirrors(m ...Mirror) Option {
	return func(c *config) error {
		for _, mm := range m {
			if mm.Prefix == "" || mm.Replacement == "" {
				return fmt.Errorf("WithMirrors: %+v: empty prefix or replacement", mm)
			}
		}
		c.mirrors = append([]Mirror(nil), m...)
		return nil
	}
}

// WithOffline serves from the cache only; a miss is an error wrapping
// ErrOffline.
func WithOffline() Option {
	return func(c *config) error { c.offline = true; return nil }
}

// WithoutDigest allows Fetch with an empty digest (templates that declare
// noDigest). The file is recorded as unverified, with its computed sha256.
func WithoutDigest() Option {
	return func(c *config) error { c.allowNoDigest = true; return nil }
}

// WithReverify re-hashes a cached file on a hit instead of trusting the
// size and mtime recorded when it was committed.
func WithReverify() Option {
	return func(c *config) error { c.reverify = true; return nil }
}

// WithProgress reports download progress to w: a progress bar when w is a
// terminal, otherwise a line every 5 s (see WithProgressInterval) or 10%.
func WithProgress(w io.Writer) Option {
	return func(c *config) error { c.progress = w; return nil }
}

// WithProgressInterval sets how often progress lines are written when w is
// not a terminal.
func WithProgressInterval(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("WithProgressInterval: %s: must be positive", d)
		}
		c.progressEvery = d
		return nil
	}
}

// WithProgressBar forces the progress bar on or off (default: on when the
// progress writer is a terminal).
func WithProgressBar(on bool) Option {
	return func(c *config) error { c.progressBar = &on; return nil }
}

// WithRetry bounds retries of transient failures: at most maxAttempts
// attempts (1 = no retry) within maxElapsed (0 = no time bound).
func WithRetry(maxAttempts int, maxElapsed time.Duration) Option {
	return func(c *config) error {
		if maxAttempts < 1 || maxElapsed < 0 {
			return fmt.Errorf("WithRetry(%d, %s): want at least 1 attempt and a non-negative duration", maxAttempts, maxElapsed)
		}
		c.maxAttempts, c.maxElapsed = maxAttempts, maxElapsed
		return nil
	}
}

// WithBackoff sets the exponential backoff between attempts (default 1s
// growing to 30s, randomised).
func WithBackoff(initial, maxInterval time.Duration) Option {
	return func(c *config) error {
		if initial <= 0 || maxInterval < initial {
			return fmt.Errorf("WithBackoff(%s, %s): want 0 < initial <= max", initial, maxInterval)
		}
		c.initialBackoff, c.maxBackoff = initial, maxInterval
		return nil
	}
}

// WithMaxRetryAfter bounds how long a 429/503 Retry-After is honoured
// (default 2m); a server asking for longer fails the download at once.
func WithMaxRetryAfter(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("WithMaxRetryAfter: %s: must not be negative", d)
		}
		c.maxRetryAfter = d
		return nil
	}
}

// WithStallTimeout abandons an attempt (and retries, resuming) when no byte
// arrives for d (default 2m).
func WithStallTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("WithStallTimeout: %s: must be positive", d)
		}
		c.stallTimeout = d
		return nil
	}
}

// WithoutDecompress keeps compressed images as published: Result.Path is
// the verified compressed file.
func WithoutDecompress() Option {
	return func(c *config) error { c.decompress = false; return nil }
}

// withLockPoll sets how often a waiter retries the entry lock (tests).
func withLockPoll(d time.Duration) Option {
	return func(c *config) error { c.lockPoll = d; return nil }
}

// withInlineHash hashes in the goroutine that reads the body instead of a
// pipeline goroutine: only for the benchmark's comparison.
func withInlineHash() Option {
	return func(c *config) error { c.inlineHash = true; return nil }
}
