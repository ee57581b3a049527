package caches

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gofrs/flock"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/artifacts"
	"github.com/guestcatalog/guestcatalog/framework/download"
	"github.com/guestcatalog/guestcatalog/framework/imagebuild"
	"github.com/guestcatalog/guestcatalog/framework/provisioned"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
)

// Kind is the kind of a cache entry.
type Kind string

// Kinds of entries, in the order they are listed.
const (
	KindDownload    Kind = "download"    // a verified download
	KindImage       Kind = "image"       // a locally built image
	KindProvisioned Kind = "provisioned" // a saved provisioned guest
	// KindArtifactDrive is a read-only ISO of a template's vendor
	// artifacts (framework/artifacts). It is written again, the same
	// bytes, from the verified downloads whenever it is missing, so
	// pruning one never breaks a saved guest.
	KindArtifactDrive Kind = "artifact-drive"
)

// Kinds are every kind.
func Kinds() []Kind { return []Kind{KindDownload, KindImage, KindProvisioned, KindArtifactDrive} }

// ParseKinds reads kind names ("download", "image", "provisioned",
// "artifact-drive"; plural forms accepted). None means every kind.
func ParseKinds(names []string) ([]Kind, error) {
	if len(names) == 0 {
		return Kinds(), nil
	}
	var out []Kind
	for _, n := range names {
		for _, part := range strings.Split(n, ",") {
			k := Kind(strings.TrimSuffix(strings.TrimSpace(part), "s"))
			if !slices.Contains(Kinds(), k) {
				return nil, fmt.Errorf("unknown cache kind %q (want download, image, provisioned or artifact-drive)", part)
			}
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	return out, nil
}

// Entry is one cache entry of any kind.
type Entry struct {
	Kind Kind `json:"kind"`
	// Name says what it is: the URL of a download, "build:<suite> <key>"
	// for an image, the template of a saved guest.
	Name string `json:"name"`
	// Dir is the entry's directory; Path the file a user would use.
	Dir  string `json:"dir"`
	Path string `json:"path,omitempty"`
	// DiskUsage is what its files occupy.
	DiskUsage int64     `json:"diskUsage"`
	LastUsed  time.Time `json:"lastUsed,omitzero"`
	// Detail: the digest, "partial", the base image of a saved guest.
	Detail string `json:"detail,omitempty"`
	// Download is the download cache's own description (downloads only).
	Download *download.Entry `json:"download,omitempty"`

	key string
}

// Caches is the cache root and its parts.
type Caches struct {
	root      string
	downloads *download.Cache
}

// Open returns the caches under root (nothing is created).
func Open(root string) (*Caches, error) {
	if root == "" {
		return nil, errors.New("caches.Open: empty cache root")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	d, err := download.New(download.WithCacheDir(abs))
	if err != nil {
		return nil, err
	}
	return &Caches{root: abs, downloads: d}, nil
}

func (c *Caches) imagesDir() string      { return filepath.Join(c.root, "images") }
func (c *Caches) provisionedDir() string { return filepath.Join(c.root, "provisioned") }

// List returns the entries of the given kinds (none: all), each kind most
// recently used first.
func (c *Caches) List(kinds ...Kind) ([]Entry, error) {
	if len(kinds) == 0 {
		kinds = Kinds()
	}
	var out []Entry
	var errs []error
	for _, k := range Kinds() {
		if !slices.Contains(kinds, k) {
			continue
		}
		var es []Entry
		var err error
		switch k {
		case KindDownload:
			es, err = c.listDownloads()
		case KindImage:
			es, err = c.listImages()
		case KindProvisioned:
			es, err = c.listProvisioned()
		case KindArtifactDrive:
			es, err = c.listArtifactDrives()
		}
		if err != nil {
			errs = append(errs, err)
		}
		sort.SliceStable(es, func(i, j int) bool { return es[i].LastUsed.After(es[j].LastUsed) })
		out = append(out, es...)
	}
	return out, errors.Join(errs...)
}

func (c *Caches) listDownloads() ([]Entry, error) {
	des, err := c.downloads.List()
	var out []Entry
	for i := range des {
		d := des[i]
		e := Entry{Kind: KindDownload, Name: d.URL, Dir: d.Dir, Path: d.Path, DiskUsage: d.DiskUsage, LastUsed: d.LastUsed, Detail: d.Digest, Download: &d}
		if e.Name == "" {
			e.Name = "(unknown URL)"
		}
		if !d.Complete {
			e.Detail = "partial " + download.FormatBytes(d.PartialSize)
		} else if !d.Verified {
			e.Detail += " (no digest given)"
		}
		out = append(out, e)
	}
	return out, err
}

func (c *Caches) listImages() ([]Entry, error) {
	des, err := os.ReadDir(c.imagesDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, de := range des {
		if !de.IsDir() || strings.HasPrefix(de.Name(), ".") {
			continue
		}
		dir := filepath.Join(c.imagesDir(), de.Name())
		e := Entry{Kind: KindImage, Name: "build: " + de.Name() + " (incomplete)", Dir: dir, DiskUsage: du(dir), key: de.Name()}
		var m imagebuild.Meta
		if b, err := os.ReadFile(filepath.Join(dir, imagebuild.MetaFile)); err == nil && json.Unmarshal(b, &m) == nil {
			e.Name = fmt.Sprintf("build:%s %s", m.Recipe.Suite, de.Name())
			if m.Plan.Arch != "" {
				e.Name = fmt.Sprintf("build:%s/%s %s", m.Recipe.Suite, m.Plan.Arch, de.Name())
			}
			e.Path = filepath.Join(dir, imagebuild.DiskFile)
			e.Detail = m.Digest
		}
		e.LastUsed = mtime(filepath.Join(dir, imagebuild.MetaFile), dir)
		out = append(out, e)
	}
	return out, nil
}

func (c *Caches) listProvisioned() ([]Entry, error) {
	if _, err := os.Stat(c.provisionedDir()); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	st, err := provisioned.Open(c.root)
	if err != nil {
		return nil, err
	}
	es, err := st.List()
	var out []Entry
	for _, pe := range es {
		out = append(out, Entry{
			Kind: KindProvisioned, Name: pe.Meta.Template, Dir: pe.Dir, Path: pe.Path(provisioned.FileDisk),
			DiskUsage: du(pe.Dir), LastUsed: mtime(pe.Path(provisioned.FileMeta), pe.Dir),
			Detail: "on " + pe.Meta.Image, key: pe.Meta.Key,
		})
	}
	return out, err
}

func (c *Caches) drivesDir() string { return filepath.Join(c.root, artifacts.DrivesDir) }

// listArtifactDrives lists the artifacts drives; a drive xorriso left
// half-written (interrupted) is listed as incomplete.
func (c *Caches) listArtifactDrives() ([]Entry, error) {
	des, err := os.ReadDir(c.drivesDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, de := range des {
		if !de.Type().IsRegular() || !strings.HasSuffix(de.Name(), ".iso") {
			continue
		}
		p := filepath.Join(c.drivesDir(), de.Name())
		fi, err := de.Info()
		if err != nil {
			continue
		}
		e := Entry{Kind: KindArtifactDrive, Name: "artifacts " + strings.TrimSuffix(de.Name(), ".iso"), Dir: p, Path: p,
			DiskUsage: allocated(fi), LastUsed: fi.ModTime(), Detail: "read-only ISO " + catalog.ArtifactsLabel}
		if strings.HasPrefix(de.Name(), ".") {
			e.Name, e.Path, e.Detail = "artifacts (incomplete) "+de.Name(), "", "interrupted write"
		}
		out = append(out, e)
	}
	return out, nil
}

// verifyArtifactDrive checks that a drive is an ISO 9660 image with the
// artifacts label (its primary volume descriptor at sector 16).
func verifyArtifactDrive(e Entry) error {
	if e.Path == "" {
		return errors.New("incomplete: an interrupted write")
	}
	f, err := os.Open(e.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	pvd := make([]byte, 72)
	if _, err := f.ReadAt(pvd, 16*2048); err != nil {
		return fmt.Errorf("%s: no ISO 9660 volume descriptor: %w", e.Path, err)
	}
	if string(pvd[:6]) != "\x01CD001" {
		return fmt.Errorf("%s: not an ISO 9660 image (no primary volume descriptor)", e.Path)
	}
	if label := strings.TrimRight(string(pvd[40:72]), " "); label != catalog.ArtifactsLabel {
		return fmt.Errorf("%s: volume label %q, want %q", e.Path, label, catalog.ArtifactsLabel)
	}
	return nil
}

// lockFile is the lock a running build or provisioning holds for e.
func (c *Caches) lockFile(e Entry) string {
	switch e.Kind {
	case KindImage:
		return e.Dir + ".lock"
	case KindProvisioned:
		return filepath.Join(c.provisionedDir(), e.key+".lock")
	}
	return ""
}

// tryLock takes e's lock without waiting; ok is false when a running
// build or verify holds it. An artifacts drive has no lock: it is
// written under a temporary name and renamed, and a removed one is
// written again when next needed (a running guest keeps its open file).
func (c *Caches) tryLock(e Entry) (unlock func(), ok bool) {
	if e.Kind == KindArtifactDrive {
		return func() {}, true
	}
	l := flock.New(c.lockFile(e))
	got, err := l.TryLock()
	if err != nil || !got {
		return nil, false
	}
	return func() { _ = l.Unlock() }, true
}

// PruneOptions say what Prune removes.
type PruneOptions struct {
	// Kinds to prune (none: every kind).
	Kinds []Kind
	// OlderThan removes entries not used for this long; All removes every
	// entry not in use.
	OlderThan time.Duration
	All       bool
	DryRun    bool
}

// PruneReport is what Prune did (or would do).
type PruneReport struct {
	Removed []Entry `json:"removed"`
	// InUse were due but locked by a running pull, build or verify.
	InUse []Entry `json:"inUse"`
	Freed int64   `json:"freed"`
}

// Prune removes entries of the given kinds unused for OlderThan (or all).
// Removing a built image leaves the saved guests on it unusable: they are
// discarded on their next lookup.
func (c *Caches) Prune(ctx context.Context, opts PruneOptions) (PruneReport, error) {
	var rep PruneReport
	if !opts.All && opts.OlderThan <= 0 {
		return rep, errors.New("prune: give an age (OlderThan > 0) or All")
	}
	kinds := opts.Kinds
	if len(kinds) == 0 {
		kinds = Kinds()
	}
	var errs []error
	if slices.Contains(kinds, KindDownload) {
		dr, err := c.downloads.Prune(ctx, download.PruneOptions{OlderThan: opts.OlderThan, All: opts.All, DryRun: opts.DryRun})
		for _, d := range dr.Removed {
			rep.Removed = append(rep.Removed, Entry{Kind: KindDownload, Name: d.URL, Dir: d.Dir, DiskUsage: d.DiskUsage, LastUsed: d.LastUsed})
		}
		for _, d := range dr.InUse {
			rep.InUse = append(rep.InUse, Entry{Kind: KindDownload, Name: d.URL, Dir: d.Dir, DiskUsage: d.DiskUsage, LastUsed: d.LastUsed})
		}
		rep.Freed += dr.Freed
		if err != nil {
			errs = append(errs, err)
		}
	}
	var others []Kind
	for _, k := range kinds {
		if k != KindDownload {
			others = append(others, k)
		}
	}
	if len(others) == 0 {
		return rep, errors.Join(errs...)
	}
	entries, err := c.List(others...)
	if err != nil {
		errs = append(errs, err)
	}
	cutoff := time.Now().Add(-opts.OlderThan)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if !opts.All && e.LastUsed.After(cutoff) {
			continue
		}
		unlock, ok := c.tryLock(e)
		if !ok {
			rep.InUse = append(rep.InUse, e)
			continue
		}
		if !opts.DryRun {
			if err := os.RemoveAll(e.Dir); err != nil {
				errs = append(errs, fmt.Errorf("removing %s: %w", e.Dir, err))
				unlock()
				continue
			}
		}
		unlock()
		rep.Removed = append(rep.Removed, e)
		rep.Freed += e.DiskUsage
	}
	return rep, errors.Join(errs...)
}

// VerifyResult is the check of one entry; Err is nil when it is sound.
type VerifyResult struct {
	Entry Entry
	Err   error
}

// Verify checks entries of the given kinds (none: all) without the network:
// downloads are re-hashed (a corrupt one is removed); a built image's disk
// is re-hashed against the digest recorded when it was built and inspected
// (a standalone qcow2); a saved guest's disk must be a qcow2 on its base
// image holding its snapshot. A bad image or saved guest is removed too.
func (c *Caches) Verify(ctx context.Context, kinds ...Kind) ([]VerifyResult, error) {
	if len(kinds) == 0 {
		kinds = Kinds()
	}
	var out []VerifyResult
	if slices.Contains(kinds, KindDownload) {
		reps, err := c.downloads.Verify(ctx)
		if err != nil {
			return out, err
		}
		for _, r := range reps {
			d := r.Entry
			out = append(out, VerifyResult{Entry: Entry{Kind: KindDownload, Name: d.URL, Dir: d.Dir, Path: d.Path, DiskUsage: d.DiskUsage, Detail: d.Digest}, Err: r.Err})
		}
	}
	var others []Kind
	for _, k := range kinds {
		if k != KindDownload {
			others = append(others, k)
		}
	}
	if len(others) == 0 {
		return out, nil
	}
	entries, err := c.List(others...)
	if err != nil {
		return out, err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		unlock, ok := c.tryLock(e)
		if !ok {
			continue // being built or used: not ours to judge now
		}
		var verr error
		switch e.Kind {
		case KindImage:
			verr = verifyImage(ctx, e)
		case KindProvisioned:
			verr = verifyProvisioned(ctx, c.root, e)
		case KindArtifactDrive:
			verr = verifyArtifactDrive(e)
		}
		if verr != nil {
			if err := os.RemoveAll(e.Dir); err != nil {
				verr = fmt.Errorf("%w (and removing it: %v)", verr, err)
			}
		}
		unlock()
		out = append(out, VerifyResult{Entry: e, Err: verr})
	}
	return out, nil
}

func verifyImage(ctx context.Context, e Entry) error {
	var m imagebuild.Meta
	b, err := os.ReadFile(filepath.Join(e.Dir, imagebuild.MetaFile))
	if err != nil {
		return fmt.Errorf("incomplete build: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	for _, f := range []string{imagebuild.DiskFile, imagebuild.KernelFile, imagebuild.InitrdFile} {
		if _, err := os.Stat(filepath.Join(e.Dir, f)); err != nil {
			return fmt.Errorf("missing %s", f)
		}
	}
	disk := filepath.Join(e.Dir, imagebuild.DiskFile)
	if m.Digest != "" {
		got, err := sha256File(ctx, disk)
		if err != nil {
			return err
		}
		if got != m.Digest {
			return fmt.Errorf("%s: %w: expected %s, got %s", disk, download.ErrDigestMismatch, m.Digest, got)
		}
	}
	_, err = qemu.Inspect(ctx, disk, qemu.FormatQcow2)
	return err
}

// verifyProvisioned checks a saved guest. One saved over a base image
// outside root (the cache was moved or copied; its next resume rebases it
// onto this cache's base, provisioned.Entry.Relocate) is judged by its
// own files only: its disk must still name that base.
func verifyProvisioned(ctx context.Context, root string, e Entry) error {
	var m provisioned.Meta
	b, err := os.ReadFile(filepath.Join(e.Dir, provisioned.FileMeta))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	if m.Format != provisioned.Format {
		// Another version's entry (the cache may be shared with it): not
		// this version's to judge or remove; prune removes it by age.
		return nil
	}
	for _, f := range []string{provisioned.FileDisk, provisioned.FileState, provisioned.FileRAM, provisioned.FileClientKey, provisioned.FileHostKey, provisioned.FileSeed} {
		if _, err := os.Stat(filepath.Join(e.Dir, f)); err != nil {
			return fmt.Errorf("missing %s", f)
		}
	}
	elsewhere := !strings.HasPrefix(m.Base, root+string(filepath.Separator))
	if _, err := os.Stat(m.Base); err != nil && !elsewhere {
		return fmt.Errorf("its base image is gone: %w", err)
	}
	disk := filepath.Join(e.Dir, provisioned.FileDisk)
	info, err := qemu.Info(ctx, disk, qemu.FormatQcow2)
	if err != nil {
		return err
	}
	switch {
	case info.Format != qemu.FormatQcow2:
		return fmt.Errorf("%s: format is %q, want qcow2", disk, info.Format)
	case info.DataFile() != "":
		return fmt.Errorf("%w: %s: format-specific.data.data-file is %q", qemu.ErrUnsafeImage, disk, info.DataFile())
	case info.BackingFile != m.Base:
		return fmt.Errorf("%s: backing-filename is %q, want the base image %s", disk, info.BackingFile, m.Base)
	}
	// The full check (digests of disk, RAM and state); a resume checks
	// only their identity (provisioned.Entry.Verify).
	return (&provisioned.Entry{Dir: e.Dir, Meta: m}).VerifyDigests()
}

func sha256File(ctx context.Context, p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n, err := f.Read(buf)
		h.Write(buf[:n])
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", err
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// du is the disk space the files under dir occupy (allocated blocks; it
// does not follow symlinks).
func du(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() {
			n += allocated(fi)
		}
		return nil
	})
	return n
}

// mtime is the modification time of the first path that exists.
func mtime(paths ...string) time.Time {
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			return fi.ModTime()
		}
	}
	return time.Time{}
}
