package artifacts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/download"
)

// DrivesDir is the cache subdirectory of the artifact drives (not
// "artifacts": that is the default of verify's per-template artifacts).
const DrivesDir = "artifact-drives"

// Fetcher fetches a URL into a verified cache; *download.Cache implements it.
type Fetcher interface {
	Fetch(ctx context.Context, url, digest string, opts ...download.Option) (download.Result, error)
}

// File is one artifact fetched and verified on the host.
type File struct {
	Name string `json:"name"`
	// URL is the artifact's URL (params expanded); Source where the bytes
	// came from (a mirror, when one was used).
	URL    string `json:"url"`
	Source string `json:"source,omitempty"`
	// Digest is what the file was verified against; DigestFrom says where
	// it came from: "catalog" (pinned) or the checksum file's URL.
	Digest     string `json:"digest"`
	DigestFrom string `json:"digestFrom"`
	Size       int64  `json:"size"`
	// Status: downloaded, resumed or from cache.
	Status string `json:"status"`
	// Path is the verified file in the cache.
	Path        string `json:"-"`
	InstallPath string `json:"installPath,omitempty"`
}

// Set is a template's artifacts for one arch.
type Set struct {
	Files []File
	// Drive is the read-only ISO (label catalog.ArtifactsLabel) holding
	// the files by name; "" when the template has no artifacts.
	Drive string
}

// Option configures Prepare.
type Option func(*options) error

type options struct {
	offline  bool
	cacheDir string
	fetcher  Fetcher
	mirrors  []download.Mirror
	logger   *slog.Logger
	progress io.Writer
}

// WithCacheDir is the cache root: downloads go to <dir>/downloads, drives
// to <dir>/artifact-drives. Required.
func WithCacheDir(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return errors.New("WithCacheDir: empty directory")
		}
		o.cacheDir = dir
		return nil
	}
}

// WithOffline uses only what the cache holds, verified.
func WithOffline() Option { return func(o *options) error { o.offline = true; return nil } }

// WithFetcher replaces the download cache (tests).
func WithFetcher(f Fetcher) Option {
	return func(o *options) error {
		if f == nil {
			return errors.New("WithFetcher: nil fetcher")
		}
		o.fetcher = f
		return nil
	}
}

// WithMirrors rewrites download URLs ("PREFIX=MIRROR", as --mirror).
func WithMirrors(specs []string) Option {
	return func(o *options) error {
		m, err := download.ParseMirrors(specs...)
		if err != nil {
			return fmt.Errorf("WithMirrors: %w", err)
		}
		o.mirrors = append(o.mirrors, m...)
		return nil
	}
}

// WithLogger logs each artifact fetched (silent by default).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l != nil {
			o.logger = l
		}
		return nil
	}
}

// WithProgress writes download progress to w.
func WithProgress(w io.Writer) Option { return func(o *options) error { o.progress = w; return nil } }

// Prepare fetches t's artifacts for arch through the verified download
// cache and writes the read-only drive that hands them to the guest. A
// checksum-file artifact gets its digest from the release's checksum file,
// fetched on the host first. A digest mismatch ends it: no fall-back, and
// nothing is cached as valid. Offline, only cached verified files are used.
func Prepare(ctx context.Context, t *catalog.Template, arch string, opts ...Option) (*Set, error) {
	if t == nil {
		return nil, errors.New("artifacts.Prepare: nil template")
	}
	if len(t.Artifacts) == 0 {
		return &Set{}, nil
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	files, err := o.fetchAll(ctx, t, arch)
	if err != nil {
		return nil, err
	}
	set := &Set{Files: files}
	dir := o.cacheDir
	if dir == "" {
		dir = os.TempDir()
	}
	set.Drive, err = WriteDrive(ctx, filepath.Join(dir, DrivesDir), set.Files)
	if err != nil {
		return nil, err
	}
	return set, nil
}

// Fetch fetches and verifies t's artifacts for arch into the download
// cache, as Prepare does, without writing the drive (`catalog pull`).
func Fetch(ctx context.Context, t *catalog.Template, arch string, opts ...Option) ([]File, error) {
	if t == nil {
		return nil, errors.New("artifacts.Fetch: nil template")
	}
	if len(t.Artifacts) == 0 {
		return nil, nil
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	return o.fetchAll(ctx, t, arch)
}

func newOptions(opts []Option) (*options, error) {
	o := &options{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, fmt.Errorf("artifacts option: %w", err)
		}
	}
	if o.cacheDir == "" && o.fetcher == nil {
		return nil, errors.New("artifacts: no cache directory (WithCacheDir)")
	}
	return o, nil
}

func (o *options) fetchAll(ctx context.Context, t *catalog.Template, arch string) ([]File, error) {
	resolved, err := t.ArtifactsFor(arch)
	if err != nil {
		return nil, err
	}
	f, err := o.getFetcher()
	if err != nil {
		return nil, err
	}
	var files []File
	for _, r := range resolved {
		file, err := o.fetchOne(ctx, f, r)
		if err != nil {
			return nil, fmt.Errorf("template %s artifacts[%d] (%s): %w", catalog.Quote(t.Name), r.Index, r.Name, err)
		}
		files = append(files, file)
	}
	return files, nil
}

func (o *options) getFetcher() (Fetcher, error) {
	if o.fetcher != nil {
		return o.fetcher, nil
	}
	dopts := []download.Option{download.WithCacheDir(o.cacheDir), download.WithLogger(o.logger)}
	if o.progress != nil {
		dopts = append(dopts, download.WithProgress(o.progress))
	}
	if len(o.mirrors) > 0 {
		dopts = append(dopts, download.WithMirrors(o.mirrors...))
	}
	return download.New(dopts...)
}

// fetchOne fetches one artifact (its checksum file first when it has one).
func (o *options) fetchOne(ctx context.Context, f Fetcher, r catalog.ResolvedArtifact) (File, error) {
	file := File{Name: r.Name, URL: r.URL, Digest: r.Digest, DigestFrom: "catalog"}
	if r.Install != nil {
		file.InstallPath = r.Install.Path
	}
	if r.Digest == "" {
		d, err := ChecksumFromFile(ctx, f, r.ChecksumURL, r.ChecksumName, o.offline)
		if err != nil {
			return File{}, err
		}
		file.Digest, file.DigestFrom = d, r.ChecksumURL
	}
	// As published: a .tar.gz stays a .tar.gz for the guest to unpack.
	fopts := []download.Option{download.WithoutDecompress()}
	if o.offline {
		fopts = append(fopts, download.WithOffline())
	}
	res, err := f.Fetch(ctx, r.URL, file.Digest, fopts...)
	if err != nil {
		return File{}, err
	}
	file.Source, file.Size, file.Status, file.Path = res.Source, res.Size, res.Status.String(), res.DataPath
	if file.Path == "" {
		file.Path = res.Path
	}
	o.logger.Info("artifact ready", "name", r.Name, "url", r.URL, "digest", file.Digest, "from", file.DigestFrom, "status", file.Status)
	return file, nil
}

// ChecksumFromFile fetches a release's checksum file through the cache
// (it has no digest of its own: a cached copy is used as it is) and
// returns the digest it gives name.
func ChecksumFromFile(ctx context.Context, f Fetcher, url, name string, offline bool) (string, error) {
	fopts := []download.Option{download.WithoutDigest(), download.WithoutDecompress()}
	if offline {
		fopts = append(fopts, download.WithOffline())
	}
	res, err := f.Fetch(ctx, url, "", fopts...)
	if err != nil {
		return "", fmt.Errorf("checksum file: %w", err)
	}
	p := res.DataPath
	if p == "" {
		p = res.Path
	}
	fh, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("checksum file %s: %w", url, err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxChecksumFile+1))
	if err != nil {
		return "", fmt.Errorf("checksum file %s: %w", url, err)
	}
	d, err := ParseChecksumFile(data, name)
	if err != nil {
		return "", fmt.Errorf("checksum file %s: %w", url, err)
	}
	return d, nil
}

// driveFormat changes when the same files make other bytes on the drive
// (modes, dates): a drive of the old format is then not reused.
const driveFormat = "gcartifacts-2\x00"

// DriveKey names the drive of a set of files: a hash of their names and
// digests, so that the same verified files make the same drive, shared by
// runs and templates.
func DriveKey(files []File) string {
	h := sha256.New()
	h.Write([]byte(driveFormat))
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%s\x00", f.Name, f.Digest)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// WriteDrive writes (or finds) the ISO 9660 image, labelled
// catalog.ArtifactsLabel, with each file under its name, in dir. It is
// attached read-only; the guest mounts it by label.
func WriteDrive(ctx context.Context, dir string, files []File) (string, error) {
	if len(files) == 0 {
		return "", nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("artifacts drive: %w", err)
	}
	final := filepath.Join(dir, DriveKey(files)+".iso")
	if fi, err := os.Stat(final); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
		now := time.Now()
		_ = os.Chtimes(final, now, now) // last use, for pruning
		return final, nil
	}
	xorriso, err := exec.LookPath("xorriso")
	if err != nil {
		return "", fmt.Errorf("artifacts drive: xorriso is needed to write it (apt-get install xorriso): %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".drive-*.iso")
	if err != nil {
		return "", fmt.Errorf("artifacts drive: %w", err)
	}
	tmp.Close()
	os.Remove(tmp.Name()) // xorriso refuses to overwrite a file as output
	// xorriso's native commands, so that the image is the same bytes for
	// the same files: a saved guest resumes with the drive it was
	// provisioned with, even if the drive is written again (the files'
	// times in the cache differ; they are set to the epoch here, and
	// SOURCE_DATE_EPOCH fixes the volume's own dates and ids).
	args := []string{"-no_rc", "-outdev", "stdio:" + tmp.Name(), "-volid", catalog.ArtifactsLabel,
		"-rockridge", "on", "-joliet", "off", "-compliance", "iso_9660_level=3"}
	for _, f := range files {
		if strings.ContainsAny(f.Name, "/\x00") || f.Name == "" || f.Name == "." || f.Name == ".." {
			return "", fmt.Errorf("artifacts drive: %q cannot be a file name on the drive", f.Name)
		}
		args = append(args, "-map", f.Path, "/"+f.Name)
	}
	// Read-only for everyone, and executable: a script may run a binary
	// from the drive as it is (the cache's file modes say nothing).
	args = append(args, "-chmod_r", "0555", "/", "--")
	for _, t := range []string{"b", "a", "m", "c"} {
		args = append(args, "-alter_date_r", t, "Jan 01 00:00:00 1970", "/", "--")
	}
	args = append(args, "-commit")
	cmd := exec.CommandContext(ctx, xorriso, args...)
	// Its own environment: nothing of the caller's is needed.
	cmd.Env = []string{"SOURCE_DATE_EPOCH=0", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("artifacts drive: xorriso: %w: %s", err, strings.TrimSpace(string(out)))
	}
	if err := os.Chmod(tmp.Name(), 0o444); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("artifacts drive: %w", err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("artifacts drive: %w", err)
	}
	return final, nil
}

// Unavailable reports whether err says the artifacts cannot be had here
// (offline and not cached, the network unreachable) rather than that they
// are wrong (a digest mismatch, a server answering 404, a checksum file
// without the file): the first skips a template, the second fails it.
func Unavailable(err error) bool {
	var he *download.HTTPError
	switch {
	case err == nil:
		return false
	case errors.Is(err, download.ErrOffline):
		return true
	case errors.Is(err, download.ErrDigestMismatch), errors.Is(err, ErrNoChecksum),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.As(err, &he):
		return false
	case strings.HasPrefix(err.Error(), "artifacts drive:"):
		return false
	}
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) || strings.Contains(err.Error(), "dial tcp") || strings.Contains(err.Error(), "no such host")
}

// Pin returns a copy of t whose artifacts carry, for arch, the digest each
// was verified against (a checksum-file source becomes a pinned one): what
// provisioning depends on, for the saved-guest key and the seed.
func Pin(t *catalog.Template, arch string, set *Set) *catalog.Template {
	c := t.DeepCopy()
	if set == nil {
		return c
	}
	byName := map[string]File{}
	for _, f := range set.Files {
		byName[f.Name] = f
	}
	for i, a := range c.Artifacts {
		f, ok := byName[a.Name]
		if !ok {
			continue
		}
		for j, s := range a.Sources {
			if s.Arch == arch {
				c.Artifacts[i].Sources[j].Digest = f.Digest
				c.Artifacts[i].Sources[j].ChecksumFile = nil
			}
		}
	}
	return c
}

// CoveredByArtifacts reports whether url (an engine requirement) is where
// t's artifacts for arch come from: a prefix of one of their URLs or
// checksum-file URLs. Such a requirement is met by fetching the artifacts
// on the host (or finding them in the cache), not by the guest's network.
func CoveredByArtifacts(t *catalog.Template, arch, url string) bool {
	if t == nil || url == "" {
		return false
	}
	resolved, err := t.ArtifactsFor(arch)
	if err != nil {
		return false
	}
	prefix := strings.TrimSuffix(url, "/") + "/"
	for _, r := range resolved {
		if strings.HasPrefix(r.URL, prefix) || (r.ChecksumURL != "" && strings.HasPrefix(r.ChecksumURL, prefix)) {
			return true
		}
	}
	return false
}
