package download

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// Entry describes one cache entry (see List).
type Entry struct {
	Key string `json:"key"`
	Dir string `json:"dir"`
	URL string `json:"url,omitempty"`
	// Source is the mirror URL the file came from, if any.
	Source   string `json:"source,omitempty"`
	Digest   string `json:"digest,omitempty"`
	Verified bool   `json:"verified"`
	// Size of the file as published; Path the file Fetch returns.
	Size int64  `json:"size"`
	Path string `json:"path,omitempty"`
	// Decompressed is the compression undone for Path, if any.
	Decompressed string    `json:"decompressed,omitempty"`
	FetchedAt    time.Time `json:"fetchedAt,omitzero"`
	LastUsed     time.Time `json:"lastUsed,omitzero"`
	// Complete is false for an entry holding only an interrupted download.
	Complete    bool  `json:"complete"`
	PartialSize int64 `json:"partialSize,omitempty"`
	// DiskUsage is what the entry's files occupy (allocated blocks).
	DiskUsage int64 `json:"diskUsage"`
}

// List returns the entries holding a file or an interrupted download,
// most recently used first.
func (c *Cache) List() ([]Entry, error) {
	all, err := c.list()
	var out []Entry
	for _, e := range all {
		if e.Complete || e.PartialSize > 0 {
			out = append(out, e)
		}
	}
	return out, err
}

// list returns every entry directory, empty ones included.
func (c *Cache) list() ([]Entry, error) {
	des, err := os.ReadDir(c.root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing cache %s: %w", c.root, err)
	}
	var out []Entry
	for _, de := range des {
		if !de.IsDir() {
			continue
		}
		out = append(out, c.describe(de.Name()))
	}
	sort.SliceStable(out, func(i, j int) bool { return lastTouched(out[i]).After(lastTouched(out[j])) })
	return out, nil
}

func lastTouched(e Entry) time.Time {
	if !e.LastUsed.IsZero() {
		return e.LastUsed
	}
	return e.FetchedAt
}

func (c *Cache) describe(key string) Entry {
	dir := filepath.Join(c.root, key)
	e := Entry{Key: key, Dir: dir}
	var m meta
	if err := readJSON(filepath.Join(dir, metaName), &m); err == nil {
		e.Complete = true
		e.URL, e.Source, e.Digest, e.Verified, e.Size = m.URL, m.Source, m.Digest, m.Verified, m.Size
		e.FetchedAt = m.FetchedAt
		e.Path = filepath.Join(dir, dataName)
		if m.Decompressed != nil {
			e.Path = filepath.Join(dir, m.Decompressed.Name)
			e.Decompressed = m.Decompressed.Format
		}
		if fi, err := os.Stat(filepath.Join(dir, metaName)); err == nil {
			e.LastUsed = fi.ModTime()
		}
	} else {
		var pm partMeta
		if readJSON(filepath.Join(dir, partMetaName), &pm) == nil {
			e.URL = pm.URL
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, partName)); err == nil {
		e.PartialSize = fi.Size()
		if !e.Complete && fi.ModTime().After(e.LastUsed) {
			e.LastUsed = fi.ModTime()
		}
	}
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if fi, err := de.Info(); err == nil {
			e.DiskUsage += diskUsage(fi)
		}
	}
	return e
}

// PruneOptions select what Prune removes.
type PruneOptions struct {
	// OlderThan removes entries not used for this long (and interrupted
	// downloads not touched for this long).
	OlderThan time.Duration
	// All removes every entry that is not in use.
	All bool
	// DryRun reports without removing.
	DryRun bool
}

// PruneReport says what Prune did.
type PruneReport struct {
	Removed []Entry
	// InUse were due but locked by a running download or Fetch.
	InUse []Entry
	// Freed is the disk space released (or that would be, for a dry run).
	Freed int64
}

// Prune removes entries unused for opts.OlderThan (or all, with opts.All)
// and leftover temporary files. An entry whose lock is held is skipped. A
// file removed here may still be in use as a qcow2 backing file of an
// overlay that outlives the prune: prune with a margin.
func (c *Cache) Prune(ctx context.Context, opts PruneOptions) (PruneReport, error) {
	var rep PruneReport
	if !opts.All && opts.OlderThan <= 0 {
		return rep, errors.New("prune: give an age (OlderThan > 0) or All")
	}
	entries, err := c.list()
	if err != nil {
		return rep, err
	}
	cutoff := time.Now().Add(-opts.OlderThan)
	var errs []error
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		due := opts.All || lastTouched(e).Before(cutoff) || (!e.Complete && e.PartialSize == 0 && e.LastUsed.IsZero())
		fl := flock.New(filepath.Join(e.Dir, lockName), flock.SetPermissions(0o644))
		ok, err := fl.TryLock()
		if err != nil {
			errs = append(errs, fmt.Errorf("locking %s: %w", e.Dir, err))
			continue
		}
		if !ok {
			if due {
				rep.InUse = append(rep.InUse, e)
			}
			continue
		}
		if due {
			if !opts.DryRun {
				if err := removeEntry(e.Dir); err != nil {
					errs = append(errs, err)
					fl.Close()
					continue
				}
			}
			rep.Removed = append(rep.Removed, e)
			rep.Freed += e.DiskUsage
		} else if !opts.DryRun {
			rep.Freed += removeTemps(e.Dir)
		}
		fl.Close()
	}
	return rep, errors.Join(errs...)
}

// removeEntry deletes an entry we hold the lock of; the lock file goes
// last (waiters on it notice the unlinked lock and start over).
func removeEntry(dir string) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		if de.Name() == lockName {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, de.Name())); err != nil {
			return fmt.Errorf("pruning %s: %w", dir, err)
		}
	}
	if err := os.Remove(filepath.Join(dir, lockName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("pruning %s: %w", dir, err)
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("pruning %s: %w", dir, err)
	}
	return nil
}

// removeTemps deletes *.tmp files left by a crash (the lock is ours, so
// nobody is writing them). Interrupted downloads (data.part) are kept for
// resuming until they are old enough to prune.
func removeTemps(dir string) int64 {
	var freed int64
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if !strings.HasSuffix(de.Name(), tmpSuffix) {
			continue
		}
		if fi, err := de.Info(); err == nil && os.Remove(filepath.Join(dir, de.Name())) == nil {
			freed += diskUsage(fi)
		}
	}
	return freed
}

// VerifyReport is the outcome of re-hashing one entry.
type VerifyReport struct {
	Entry Entry
	// Err is nil when the entry is intact; else it says what was wrong
	// (the entry was removed, or could not be checked).
	Err error
}

// Verify re-hashes every complete entry against its recorded digest (and
// its decompressed file against the recorded sha256). A corrupt entry is
// removed, so the next Fetch downloads it again.
func (c *Cache) Verify(ctx context.Context) ([]VerifyReport, error) {
	entries, err := c.List()
	if err != nil {
		return nil, err
	}
	var out []VerifyReport
	for _, e := range entries {
		if !e.Complete {
			continue
		}
		if err := ctx.Err(); err != nil {
			return out, err
		}
		opts := []Option{WithOffline(), WithReverify()}
		digest := e.Digest
		if !e.Verified {
			opts = append(opts, WithoutDigest())
			digest = ""
		}
		if e.Decompressed == "" {
			opts = append(opts, WithoutDecompress())
		}
		_, err := c.Fetch(ctx, e.URL, digest, opts...)
		out = append(out, VerifyReport{Entry: e, Err: err})
	}
	return out, nil
}
