package download

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Entry file names.
const (
	lockName         = "lock"
	metaName         = "meta.json"
	dataName         = "data"
	partName         = "data.part"
	partMetaName     = "data.part.json"
	decompressedName = "data.decompressed"
	tmpSuffix        = ".tmp"
	// verdictName records the last transfer's digest mismatch, so that
	// fetches that waited on that transfer share its verdict.
	verdictName = "verdict.json"
	metaVersion = 1
)

// meta is meta.json: what was committed. Its mtime records the last use.
type meta struct {
	Version int    `json:"version"`
	URL     string `json:"url"`
	// Source is where the bytes came from when it was not URL (a mirror).
	Source string `json:"source,omitempty"`
	// Digest of data, "algo:hex": the one verified, or the sha256 computed
	// when the fetch had no digest (Verified false).
	Digest       string            `json:"digest"`
	Verified     bool              `json:"verified"`
	Size         int64             `json:"size"`
	ModTime      time.Time         `json:"modTime"`
	FetchedAt    time.Time         `json:"fetchedAt"`
	ETag         string            `json:"etag,omitempty"`
	LastModified string            `json:"lastModified,omitempty"`
	Decompressed *decompressedMeta `json:"decompressed,omitempty"`
}

type decompressedMeta struct {
	Format string `json:"format"` // xz, gz, zst, bz2
	Name   string `json:"name"`   // file in the entry dir
	// OriginalName is the URL's file name without the compression suffix
	// (its extension tells the image format: .qcow2, .raw, .img).
	OriginalName string    `json:"originalName"`
	Size         int64     `json:"size"`
	ModTime      time.Time `json:"modTime"`
	SHA256       string    `json:"sha256"`
}

// mismatchRecord is verdict.json: a transfer of URL ended in a digest mismatch.
// Fetches that started before At (they were waiting for that transfer)
// return the same error instead of downloading again; a later fetch asks
// the server again. A committed download removes it.
type mismatchRecord struct {
	URL      string    `json:"url"`
	Source   string    `json:"source"`
	Expected string    `json:"expected"`
	Actual   string    `json:"actual"`
	At       time.Time `json:"at"`
}

// partMeta is data.part.json: validators of the partial download, sent as
// If-Range so that a changed upstream file restarts instead of splicing.
type partMeta struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"lastModified,omitempty"`
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// writeJSONAtomic writes v to path through a temp file, fsync and rename.
func writeJSONAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
