package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/download"
	"github.com/guestcatalog/guestcatalog/framework/imagebuild"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
)

// Disk formats the framework boots.
const (
	FormatQcow2 = qemu.FormatQcow2
	FormatRaw   = qemu.FormatRaw
)

// Status says how the image was obtained.
type Status string

const (
	StatusDownloaded Status = "downloaded" // fetched now (or resumed) and verified
	StatusFromCache  Status = "from-cache" // a download or build found in the cache
	StatusBuilt      Status = "built"      // built locally now
)

// ErrNoImage is returned when no image entry of the template could be used
// for the arch; the error lists why each entry was skipped.
var ErrNoImage = errors.New("no usable image")

// ErrDigestMismatch is download.ErrDigestMismatch: a downloaded file is not
// the one the catalog pinned. Never a reason to try the next entry.
var ErrDigestMismatch = download.ErrDigestMismatch

// Artifact is a guest disk ready to boot (through an overlay: it is shared
// by every guest and must not be written).
type Artifact struct {
	// Disk is the image file; Format its format (qcow2 or raw).
	Disk   string
	Format string
	// VirtualSize is the size of the disk the guest sees, in bytes. An
	// overlay must be at least this large; a larger one is grown into by
	// cloud-init (resizefs) at boot.
	VirtualSize int64
	// Kernel, Initrd and Append are set for built images (direct kernel
	// boot); empty for downloaded ones, which boot through Firmware.
	Kernel string
	Initrd string
	Append string
	// Firmware is bios or uefi for downloaded images, "" for direct kernel boot.
	Firmware string
	// Source is the image's URL, or "build:<suite>" for a local build.
	Source string
	// Digest is the upstream digest for downloads ("sha512:…" as pinned,
	// or the computed sha256 of an unpinned one), the sha256 of the qcow2
	// for builds.
	Digest string
	// Verified is true when Digest was checked against a pinned value (or
	// computed by our own build).
	Verified bool
	// Recipe is the build recipe of a built image.
	Recipe *catalog.BuildRecipe
	Status Status
	// Arch is the arch the image is for; Entry the catalog entry used and
	// Index its position among the template's images for Arch.
	Arch  string
	Entry catalog.Image
	Index int
	// Skipped lists the entries tried (or passed over) before this one,
	// and why.
	Skipped []Skip
	// Build is the builder's artifact (provenance: packages, sizes) for a
	// built image; Download the download cache's result for a fetched one.
	Build    *imagebuild.Artifact
	Download *download.Result
}

// Skip is an image entry that was not used, and why.
type Skip struct {
	Index  int    `json:"index"`
	Source string `json:"source"`
	Reason string `json:"reason"`
	// Unavailable is true when the entry cannot be had in this environment
	// (offline, no network route to the host, build tools or root missing,
	// another arch), false when it failed (an HTTP error from the server:
	// the pinned URL is gone; a build that broke).
	Unavailable bool `json:"unavailable"`
}

// NoImageError is returned (wrapping ErrNoImage) when no entry could be used.
type NoImageError struct {
	Template string
	Arch     string
	Skipped  []Skip
	errs     []error
}

func (e *NoImageError) Error() string {
	if len(e.Skipped) == 0 {
		return fmt.Sprintf("template %s has no image for %s: %s", e.Template, e.Arch, ErrNoImage)
	}
	return fmt.Sprintf("template %s on %s: %s:\n%s", e.Template, e.Arch, ErrNoImage, errors.Join(e.errs...))
}

// Unwrap gives ErrNoImage and the error of every entry.
func (e *NoImageError) Unwrap() []error { return append([]error{ErrNoImage}, e.errs...) }

// Unavailable reports whether err means that the template's image cannot be
// had in this environment, rather than that something is broken, and why:
// every entry was skipped as unavailable (offline, unreachable host, build
// tools missing, no entry for the arch). Callers skip the template's specs
// then (SKIPPED: reason) instead of failing them.
func Unavailable(err error) (reason string, ok bool) {
	var ne *NoImageError
	if !errors.As(err, &ne) {
		return "", false
	}
	if len(ne.Skipped) == 0 {
		return fmt.Sprintf("template %s has no image for %s", ne.Template, ne.Arch), true
	}
	var reasons []string
	for _, s := range ne.Skipped {
		if !s.Unavailable {
			return "", false
		}
		reasons = append(reasons, fmt.Sprintf("images[%d] %s: %s", s.Index, s.Source, s.Reason))
	}
	return strings.Join(reasons, "; "), true
}

// unavailable classifies why an entry could not be used.
func unavailable(err error) bool {
	var he *download.HTTPError
	switch {
	case errors.As(err, &he):
		return false // the server answered: the catalog's URL is wrong or gone
	case errors.Is(err, download.ErrOffline), errors.Is(err, imagebuild.ErrToolMissing),
		errors.Is(err, imagebuild.ErrNeedRoot), errors.Is(err, imagebuild.ErrForeignArch):
		return true
	case errors.Is(err, ErrUnsupportedFormat), errors.Is(err, errBroken):
		return false
	}
	return true // the network: no route, DNS, refused, reset, stalled
}

// errBroken marks an entry that was obtained but is broken: a build that ran
// and failed, a download qemu-img cannot read.
var errBroken = errors.New("broken image")

// Fetcher fetches a URL into a verified cache; *download.Cache implements it.
type Fetcher interface {
	Fetch(ctx context.Context, url, digest string, opts ...download.Option) (download.Result, error)
}

// BuildFunc builds a local image; imagebuild.Build is the default.
type BuildFunc func(ctx context.Context, recipe catalog.BuildRecipe, extraPackages []string, opts ...imagebuild.Option) (*imagebuild.Artifact, error)

// Option configures Resolve.
type Option func(*options) error

type options struct {
	offline   bool
	cacheDir  string
	fetcher   Fetcher
	builder   BuildFunc
	logger    *slog.Logger
	progress  io.Writer
	mirrors   []download.Mirror
	buildOpts []imagebuild.Option
	// inspect reads an image's qemu-img info (qemu.Info by default).
	inspect func(ctx context.Context, path string) (qemu.ImageInfo, error)
}

// WithOffline downloads nothing: a URL entry is used only when the cache
// holds its download, verified against the entry's digest (pull on a
// connected machine, copy the cache); build entries are built as always.
func WithOffline() Option {
	return func(o *options) error { o.offline = true; return nil }
}

// WithCacheDir sets the cache root shared by downloads (<dir>/downloads)
// and builds (<dir>/images). Default: $GUESTCATALOG_CACHE, else the user
// cache dir.
func WithCacheDir(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return errors.New("WithCacheDir: empty directory")
		}
		o.cacheDir = dir
		return nil
	}
}

// WithFetcher replaces the download cache (default: download.New with the
// cache dir, logger, progress and mirrors given here).
func WithFetcher(f Fetcher) Option {
	return func(o *options) error {
		if f == nil {
			return errors.New("WithFetcher: nil fetcher")
		}
		o.fetcher = f
		return nil
	}
}

// WithBuilder replaces the local image builder (default imagebuild.Build).
func WithBuilder(b BuildFunc) Option {
	return func(o *options) error {
		if b == nil {
			return errors.New("WithBuilder: nil builder")
		}
		o.builder = b
		return nil
	}
}

// WithLogger logs the choice of image and every fallback (silent by default).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l != nil {
			o.logger = l
		}
		return nil
	}
}

// WithProgress writes download progress and build output to w.
func WithProgress(w io.Writer) Option {
	return func(o *options) error { o.progress = w; return nil }
}

// WithMirrors rewrites download URLs for the default fetcher; specs are
// "PREFIX=MIRROR" as the --mirror flag takes them (download.ParseMirrors).
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

func newOptions(opts []Option) (*options, error) {
	o := &options{logger: slog.New(slog.DiscardHandler), builder: imagebuild.Build, inspect: probeInfo}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, fmt.Errorf("image option: %w", err)
		}
	}
	return o, nil
}

// fetcher makes the default download cache on first use (offline runs and
// build-only templates never need one).
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
	c, err := download.New(dopts...)
	if err != nil {
		return nil, err
	}
	o.fetcher = c
	return c, nil
}

// BakedPackages are the packages a build entry with `bake: true` adds to
// the image for t on arch: those of the template's `packages` steps.
func BakedPackages(t *catalog.Template, arch string) []string {
	var out []string
	for _, s := range t.StepsFor(arch) {
		if s.Mode == catalog.ModePackages {
			out = append(out, s.Packages...)
		}
	}
	return out
}

// Resolve returns the image of a resolved template for arch (see the
// package doc for the order, the fallbacks and offline mode).
func Resolve(ctx context.Context, t *catalog.Template, arch string, opts ...Option) (*Artifact, error) {
	if t == nil {
		return nil, errors.New("image.Resolve: nil template")
	}
	if arch == "" {
		return nil, fmt.Errorf("image.Resolve %s: empty arch", t.Name)
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	images := t.ImagesFor(arch)
	noImage := &NoImageError{Template: t.Name, Arch: arch}
	if len(images) == 0 {
		return nil, noImage
	}
	log := o.logger.With("template", t.Name, "arch", arch)
	skip := func(i int, src string, err error) {
		noImage.Skipped = append(noImage.Skipped, Skip{Index: i, Source: src, Reason: err.Error(), Unavailable: unavailable(err)})
		noImage.errs = append(noImage.errs, fmt.Errorf("images[%d] %s: %w", i, src, err))
		log.Warn("image entry skipped", "index", i, "source", src, "reason", err)
	}
	for i, im := range images {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var a *Artifact
		var err error
		switch {
		case im.Build != nil:
			src := "build:" + im.Build.Suite
			a, err = o.build(ctx, t, arch, im)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, imagebuild.ErrInvalidRecipe) {
					return nil, fmt.Errorf("template %s images[%d] %s: %w", t.Name, i, src, err)
				}
				if !errors.Is(err, imagebuild.ErrToolMissing) && !errors.Is(err, imagebuild.ErrNeedRoot) && !errors.Is(err, imagebuild.ErrForeignArch) {
					// It ran and failed: the recipe or the archive is broken.
					err = fmt.Errorf("%w: %w", errBroken, err)
				}
				skip(i, src, err)
				continue
			}
		case im.Location != "":
			if o.offline && im.Digest == "" {
				// Nothing to verify a cached copy against.
				skip(i, im.Location, fmt.Errorf("%w: no digest to verify a cached copy with", download.ErrOffline))
				continue
			}
			a, err = o.fetch(ctx, im)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, download.ErrDigestMismatch) || errors.Is(err, ErrUnsafeImage) ||
					errors.Is(err, ErrFormatMismatch) || errors.Is(err, ErrUnsupportedFormat) {
					return nil, fmt.Errorf("template %s images[%d]: %w", t.Name, i, err)
				}
				skip(i, im.Location, err)
				continue
			}
		default:
			skip(i, "(empty entry)", errors.New("neither location nor build"))
			continue
		}
		a.Arch, a.Entry, a.Index, a.Skipped = arch, im, i, noImage.Skipped
		log.Info("image chosen", "index", i, "source", a.Source, "status", a.Status, "disk", a.Disk, "format", a.Format)
		return a, nil
	}
	return nil, noImage
}

func (o *options) build(ctx context.Context, t *catalog.Template, arch string, im catalog.Image) (*Artifact, error) {
	recipe := *im.Build
	var extra []string
	if recipe.Bake {
		extra = BakedPackages(t, arch)
	}
	bopts := []imagebuild.Option{imagebuild.WithCacheDir(o.cacheDir), imagebuild.WithLogger(o.logger), imagebuild.WithArch(arch)}
	if o.progress != nil {
		bopts = append(bopts, imagebuild.WithOutput(o.progress))
	}
	b, err := o.builder(ctx, recipe, extra, bopts...)
	if err != nil {
		return nil, err
	}
	st := StatusBuilt
	if b.Status == imagebuild.StatusFromCache {
		st = StatusFromCache
	}
	return &Artifact{
		Disk: b.Disk, Format: FormatQcow2, VirtualSize: b.VirtualSize, Kernel: b.Kernel, Initrd: b.Initrd, Append: b.Append,
		Firmware: im.Firmware, Source: "build:" + recipe.Suite, Digest: b.Digest, Verified: true,
		Recipe: &recipe, Status: st, Build: b,
	}, nil
}

func (o *options) fetch(ctx context.Context, im catalog.Image) (*Artifact, error) {
	f, err := o.getFetcher()
	if err != nil {
		return nil, err
	}
	var fopts []download.Option
	if im.Digest == "" {
		fopts = append(fopts, download.WithoutDigest())
	}
	if o.offline {
		fopts = append(fopts, download.WithOffline()) // the cache or nothing
	}
	r, err := f.Fetch(ctx, im.Location, im.Digest, fopts...)
	if err != nil {
		return nil, err
	}
	// Inspected before anything else sees it: a backing file, a data
	// file or a format other than the name declares ends the template.
	info, err := o.inspect(ctx, r.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: inspecting %s: %w", errBroken, r.Path, err)
	}
	if err := info.Check(r.Path, declaredFormat(im.Location)); err != nil {
		return nil, fmt.Errorf("%s: %w", im.Location, err)
	}
	st := StatusDownloaded
	if r.Status == download.FromCache {
		st = StatusFromCache
	}
	digest := r.Digest
	if im.Digest != "" {
		digest = im.Digest
	}
	fw := im.Firmware
	if fw == "" {
		fw = catalog.FirmwareBIOS
	}
	return &Artifact{
		Disk: r.Path, Format: info.Format, VirtualSize: info.VirtualSize, Firmware: fw, Source: im.Location,
		Digest: digest, Verified: im.Digest != "" && r.Verified, Status: st, Download: &r,
	}, nil
}

// probeInfo is qemu-img info with the format probed.
func probeInfo(ctx context.Context, path string) (qemu.ImageInfo, error) {
	return qemu.Info(ctx, path, "")
}
