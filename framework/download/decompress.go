package download

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Compression formats recognised by URL suffix.
func compressionSuffixes() []struct{ suffix, format string } {
	return []struct{ suffix, format string }{
		{".xz", "xz"},
		{".gz", "gz"},
		{".zst", "zst"},
		{".bz2", "bz2"},
	}
}

// compressionOf returns the compression of a URL path (by suffix) and the
// file name without it; "" when the file is not compressed. Tarballs
// (.tar.xz) are not images and are left alone.
func compressionOf(urlPath string) (format, name string) {
	base := path.Base(urlPath)
	lower := strings.ToLower(base)
	for _, c := range compressionSuffixes() {
		if strings.HasSuffix(lower, c.suffix) {
			stripped := base[:len(base)-len(c.suffix)]
			if strings.HasSuffix(strings.ToLower(stripped), ".tar") {
				return "", base
			}
			return c.format, stripped
		}
	}
	return "", base
}

// decompressFile writes the decompressed src to dst (through dst.tmp,
// fsync, rename), sparse where the output has zero blocks, hashing it.
func decompressFile(ctx context.Context, src, dst, format string) (*decompressedMeta, error) {
	in, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	br := bufio.NewReaderSize(ctxReader{ctx, in}, 1<<20)
	var r io.Reader
	switch format {
	case "gz":
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	case "xz":
		zr, err := xz.NewReader(br)
		if err != nil {
			return nil, err
		}
		r = zr
	case "zst":
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	case "bz2":
		r = bzip2.NewReader(br)
	default:
		return nil, fmt.Errorf("unknown compression %q", format)
	}
	tmp := dst + tmpSuffix
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			out.Close()
			os.Remove(tmp)
		}
	}()
	h := sha256.New()
	sw := &sparseWriter{f: out}
	n, err := io.CopyBuffer(io.MultiWriter(sw, h), r, make([]byte, 1<<20))
	if err != nil {
		return nil, err
	}
	if err := sw.close(n); err != nil {
		return nil, err
	}
	if err := out.Sync(); err != nil {
		return nil, err
	}
	if err := out.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return nil, err
	}
	ok = true
	fi, err := os.Stat(dst)
	if err != nil {
		return nil, err
	}
	return &decompressedMeta{
		Format: format, Name: path.Base(dst), Size: fi.Size(), ModTime: fi.ModTime(),
		SHA256: hex.EncodeToString(h.Sum(nil)),
	}, nil
}

// sparseWriter skips (seeks over) all-zero 4 KiB blocks: a decompressed
// raw disk image is mostly holes.
type sparseWriter struct {
	f       *os.File
	pending int64 // zero bytes not yet written (a hole to seek over)
}

const sparseBlock = 4096

func (w *sparseWriter) Write(b []byte) (int, error) {
	var zeroBlock [sparseBlock]byte
	total := len(b)
	for len(b) > 0 {
		// Find a run of non-zero blocks and write it in one call.
		k := min(len(b), sparseBlock)
		if bytes.Equal(b[:k], zeroBlock[:k]) {
			w.pending += int64(k)
			b = b[k:]
			continue
		}
		end := k
		for end < len(b) {
			next := min(len(b), end+sparseBlock)
			if bytes.Equal(b[end:next], zeroBlock[:next-end]) {
				break
			}
			end = next
		}
		if w.pending > 0 {
			if _, err := w.f.Seek(w.pending, io.SeekCurrent); err != nil {
				return total - len(b), err
			}
			w.pending = 0
		}
		if _, err := w.f.Write(b[:end]); err != nil {
			return total - len(b), err
		}
		b = b[end:]
	}
	return total, nil
}

// close sets the final size (a trailing hole is not written).
func (w *sparseWriter) close(size int64) error {
	if w.pending == 0 {
		return nil
	}
	if err := w.f.Truncate(size); err != nil {
		return errors.Join(errors.New("extending sparse file"), err)
	}
	return nil
}
