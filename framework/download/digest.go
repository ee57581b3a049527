package download

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
)

// Digest algorithms accepted in "algo:hex" digests.
const (
	SHA256 = "sha256"
	SHA512 = "sha512"
)

// Digest is a parsed "algo:hex" digest, as written in catalog templates.
type Digest struct {
	Algo string // SHA256 or SHA512
	Hex  string // lowercase hex
}

// ParseDigest parses "sha256:<64 hex>" or "sha512:<128 hex>". Hex digits
// may be upper case; they are normalised to lower case.
func ParseDigest(s string) (Digest, error) {
	algo, hx, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return Digest{}, fmt.Errorf("digest %q: want algo:hex (sha256:… or sha512:…)", s)
	}
	algo = strings.ToLower(algo)
	var size int
	switch algo {
	case SHA256:
		size = sha256.Size
	case SHA512:
		size = sha512.Size
	default:
		return Digest{}, fmt.Errorf("digest %q: unsupported algorithm %q (sha256 or sha512)", s, algo)
	}
	hx = strings.ToLower(hx)
	if len(hx) != 2*size {
		return Digest{}, fmt.Errorf("digest %q: %s needs %d hex digits, got %d", s, algo, 2*size, len(hx))
	}
	if _, err := hex.DecodeString(hx); err != nil {
		return Digest{}, fmt.Errorf("digest %q: not hex: %w", s, err)
	}
	return Digest{Algo: algo, Hex: hx}, nil
}

// String returns "algo:hex".
func (d Digest) String() string {
	if d.Algo == "" {
		return ""
	}
	return d.Algo + ":" + d.Hex
}

// IsZero reports whether d is unset.
func (d Digest) IsZero() bool { return d.Algo == "" }

func newHash(algo string) hash.Hash {
	if algo == SHA512 {
		return sha512.New()
	}
	return sha256.New()
}

func digestOf(algo string, h hash.Hash) Digest {
	return Digest{Algo: algo, Hex: hex.EncodeToString(h.Sum(nil))}
}

// ErrDigestMismatch is wrapped by every error about bytes whose digest is
// not the one expected. Such bytes are never left in the cache.
var ErrDigestMismatch = errors.New("digest mismatch")

// DigestMismatchError names the URL and both digests. Fetch wraps it as
// "downloading <url>: digest mismatch: expected …, got …".
type DigestMismatchError struct {
	URL      string // the URL the bytes came from (a mirror's, if rewritten)
	Expected string
	Actual   string
}

func (e *DigestMismatchError) Error() string {
	return fmt.Sprintf("digest mismatch: expected %s, got %s", e.Expected, e.Actual)
}

// Unwrap makes errors.Is(err, ErrDigestMismatch) true.
func (e *DigestMismatchError) Unwrap() error { return ErrDigestMismatch }
