package imagebuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofrs/flock"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/hostcheck"
)

// Status says where an artifact came from.
type Status string

const (
	// StatusBuilt: this call built the image.
	StatusBuilt Status = "built"
	// StatusFromCache: an earlier build of the same recipe was reused.
	StatusFromCache Status = "from-cache"
)

// Files of a cache entry, <cache>/images/<key>/.
const (
	DiskFile   = "disk.qcow2"
	KernelFile = "vmlinuz"
	InitrdFile = "initrd.img"
	MetaFile   = "meta.json"
)

// DefaultHeadroom is the free space left in the root filesystem beyond what
// the packages use (plus 20%): enough for first-boot writes (journal, apt
// lists) before cloud-init's resizefs grows the filesystem to the disk the
// guest is given. Free blocks cost nothing in the qcow2.
const DefaultHeadroom = 1 << 30

// Artifact is a built image: a qcow2 disk holding one ext4 filesystem (no
// partition table) and the kernel and initrd for direct kernel boot.
type Artifact struct {
	Dir    string // the cache entry, <cache>/images/<key>
	Disk   string // <Dir>/disk.qcow2
	Kernel string // <Dir>/vmlinuz
	Initrd string // <Dir>/initrd.img
	// Append is the kernel command line (root=LABEL=root rw console=…).
	Append string
	// Key is the recipe hash naming the cache entry.
	Key    string
	Status Status
	// Digest is "sha256:<hex>" of Disk, computed when it was built.
	Digest string
	// VirtualSize is the size of the disk the guest sees, in bytes; give a
	// larger overlay and cloud-init grows the filesystem at boot.
	VirtualSize int64
	// Meta is the provenance recorded in <Dir>/meta.json.
	Meta *Meta
}

// Meta is the provenance of a built image, stored as meta.json beside it.
type Meta struct {
	Key            string              `json:"key"`
	BuilderVersion string              `json:"builderVersion"`
	Recipe         catalog.BuildRecipe `json:"recipe"`
	Plan           Plan                `json:"plan"`
	BuiltAt        time.Time           `json:"builtAt"`
	Phases         []Phase             `json:"phases"`
	Kernel         string              `json:"kernel"` // version
	BootDrivers    []string            `json:"bootDrivers"`
	Append         string              `json:"append"`
	Sizes          Sizes               `json:"sizes"`
	Digest         string              `json:"digest"`
	Installed      []InstalledPackage  `json:"installed"`
	Tools          map[string]string   `json:"tools"`
}

// Phase is one timed step of a build.
type Phase struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration"`
	Seconds  float64       `json:"seconds"`
}

// Sizes of a build, in bytes.
type Sizes struct {
	Rootfs      int64 `json:"rootfs"`      // allocated by the root directory's files
	RootfsFiles int64 `json:"rootfsFiles"` // inodes in the root directory
	Filesystem  int64 `json:"filesystem"`  // the ext4 filesystem = qcow2 virtual size
	Disk        int64 `json:"disk"`        // the qcow2 file
	Kernel      int64 `json:"kernel"`
	Initrd      int64 `json:"initrd"`
}

// InstalledPackage is one line of the image's dpkg database.
type InstalledPackage struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
}

// Option configures Build.
type Option func(*options) error

type options struct {
	cacheDir string
	logger   *slog.Logger
	output   io.Writer
	arch     string
	force    bool
	headroom int64
	compress bool
	sbinDirs []string // searched after PATH for the build tools
	host     hostcheck.Host
}

// withSbinDirs replaces /usr/sbin and /sbin (tests hide the tools).
func withSbinDirs(dirs []string) Option {
	return func(o *options) error { o.sbinDirs = dirs; return nil }
}

// WithHost checks foreign-arch builds against h instead of this machine
// (tests give a fake binfmt_misc directory).
func WithHost(h hostcheck.Host) Option {
	return func(o *options) error { o.host = h; return nil }
}

// WithCacheDir sets the cache root; images go to <dir>/images/<key>/.
// Required (framework/config.DefaultCacheDir).
func WithCacheDir(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return errors.New("cache dir is empty")
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return err
		}
		o.cacheDir = abs
		return nil
	}
}

// WithLogger logs what the builder does (silent by default).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l != nil {
			o.logger = l
		}
		return nil
	}
}

// WithOutput streams progress to w: one line per phase with its duration,
// and the output of mmdebstrap, mkfs and qemu-img as it comes.
func WithOutput(w io.Writer) Option {
	return func(o *options) error { o.output = w; return nil }
}

// WithArch builds for a catalog arch (x86_64, aarch64). Default: the
// host's. A foreign arch (arm64 on x86_64) is built through qemu-user: its
// binfmt_misc registration must be in place (else ErrForeignArch, saying
// how to fix it); an image already in the cache needs none.
func WithArch(arch string) Option {
	return func(o *options) error { o.arch = arch; return nil }
}

// WithForce rebuilds even when the cache has the recipe.
func WithForce(force bool) Option {
	return func(o *options) error { o.force = force; return nil }
}

// WithHeadroom sets the free space left in the filesystem (DefaultHeadroom).
func WithHeadroom(bytes int64) Option {
	return func(o *options) error {
		if bytes < 64<<20 {
			return fmt.Errorf("headroom %d bytes: want at least 64 MiB", bytes)
		}
		o.headroom = bytes
		return nil
	}
}

func newOptions(opts []Option) (*options, error) {
	o := &options{
		sbinDirs: sbinDirs(),
		logger:   slog.New(slog.DiscardHandler),
		output:   io.Discard,
		headroom: DefaultHeadroom,
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, fmt.Errorf("image build option: %w", err)
		}
	}
	if o.output == nil {
		o.output = io.Discard
	}
	if o.arch == "" {
		o.arch = catalog.HostArch()
	}
	if o.cacheDir == "" {
		return nil, errors.New("image build: no cache directory (WithCacheDir; framework/config.DefaultCacheDir)")
	}
	return o, nil
}

// EntryDir is where the image of a plan is cached.
func EntryDir(cacheDir, key string) string { return filepath.Join(cacheDir, "images", key) }

// Build returns the image of recipe for the host arch, from the cache when
// an earlier build made it, else by building it (see the package doc).
// extraPackages are the template's `packages` steps; they are installed
// only when recipe.Bake is set. Concurrent builds of one recipe (threads or
// processes) build it once; the others wait and get it from the cache.
func Build(ctx context.Context, recipe catalog.BuildRecipe, extraPackages []string, opts ...Option) (*Artifact, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	plan, err := NewPlan(recipe, extraPackages, o.arch)
	if err != nil {
		return nil, err
	}
	imagesDir := filepath.Join(o.cacheDir, "images")
	if err := os.MkdirAll(imagesDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating image cache: %w", err)
	}
	dir := EntryDir(o.cacheDir, plan.Key)
	log := o.logger.With("key", plan.Key, "suite", plan.Suite)

	lock := flock.New(dir + ".lock")
	locked, err := lock.TryLockContext(ctx, 250*time.Millisecond)
	if err != nil || !locked {
		if err == nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("locking image cache entry %s: %w", dir, err)
	}
	defer func() { _ = lock.Unlock() }()

	if !o.force {
		if a, err := Load(o.cacheDir, plan.Key); err == nil {
			now := time.Now() // meta.json's mtime is the entry's last use (catalog cache ls, prune)
			_ = os.Chtimes(filepath.Join(dir, MetaFile), now, now)
			log.Info("image from cache", "dir", dir)
			fmt.Fprintf(o.output, "imagebuild: %s %s from cache (%s)\n", plan.Source(), plan.Key, dir)
			return a, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			log.Warn("rebuilding unusable cache entry", "err", err)
		}
	}
	if host := catalog.HostArch(); o.arch != host {
		// The guest's maintainer scripts run through qemu-user.
		if err := o.host.BinfmtReady(o.arch); err != nil {
			return nil, fmt.Errorf("building %s image on a %s host: %w: %w", o.arch, host, ErrForeignArch, err)
		}
	}
	tools, err := checkTools(toolsFor(o.arch), o.sbinDirs)
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, ErrNeedRoot
	}
	b := &builder{o: o, plan: plan, recipe: recipe, tools: tools, log: log}
	return b.build(ctx, imagesDir, dir)
}

// Load returns the cached image of key, or an error wrapping fs.ErrNotExist
// when there is none.
func Load(cacheDir, key string) (*Artifact, error) {
	dir := EntryDir(cacheDir, key)
	b, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil {
		return nil, err
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(dir, MetaFile), err)
	}
	if m.Key != key || m.BuilderVersion != BuilderVersion {
		return nil, fmt.Errorf("cache entry %s is for key %s builder %s", dir, m.Key, m.BuilderVersion)
	}
	a := artifactFor(dir, &m)
	for _, p := range []string{a.Disk, a.Kernel, a.Initrd} {
		if !fileExists(p) {
			return nil, fmt.Errorf("cache entry %s lacks %s", dir, filepath.Base(p))
		}
	}
	a.Status = StatusFromCache
	return a, nil
}

func artifactFor(dir string, m *Meta) *Artifact {
	return &Artifact{
		Dir:         dir,
		Disk:        filepath.Join(dir, DiskFile),
		Kernel:      filepath.Join(dir, KernelFile),
		Initrd:      filepath.Join(dir, InitrdFile),
		Append:      m.Append,
		Key:         m.Key,
		Digest:      m.Digest,
		VirtualSize: m.Sizes.Filesystem,
		Meta:        m,
	}
}

type builder struct {
	o      *options
	plan   *Plan
	recipe catalog.BuildRecipe
	tools  map[string]string
	log    *slog.Logger
	meta   Meta
}

// phase runs one timed step, with a start and an end line on the output.
func (b *builder) phase(name, what string, fn func() error) error {
	fmt.Fprintf(b.o.output, "imagebuild: %s %s…\n", name, what)
	start := time.Now()
	err := fn()
	d := time.Since(start)
	if err != nil {
		fmt.Fprintf(b.o.output, "imagebuild: %s failed after %.1fs\n", name, d.Seconds())
		b.log.Error("build phase failed", "phase", name, "duration", d, "err", err)
		return err
	}
	b.meta.Phases = append(b.meta.Phases, Phase{Name: name, Duration: d, Seconds: round1(d.Seconds())})
	fmt.Fprintf(b.o.output, "imagebuild: %s done in %.1fs\n", name, d.Seconds())
	b.log.Info("build phase done", "phase", name, "duration", d)
	return nil
}

func round1(s float64) float64 { return float64(int64(s*10+0.5)) / 10 }

func (b *builder) build(ctx context.Context, imagesDir, dir string) (art *Artifact, err error) {
	start := time.Now()
	removeStale(imagesDir, b.plan.Key, b.log)
	tmp, err := os.MkdirTemp(imagesDir, ".tmp-"+b.plan.Key+"-")
	if err != nil {
		return nil, fmt.Errorf("creating build dir: %w", err)
	}
	// apt downloads as the _apt user, which must reach the root directory.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if cerr := removeBuildDir(tmp); cerr != nil {
				b.log.Error("cleaning up failed build", "dir", tmp, "err", cerr)
				err = fmt.Errorf("%w (and cleaning up: %v)", err, cerr)
			}
		}
	}()
	rootfs := filepath.Join(tmp, "rootfs")
	raw := filepath.Join(tmp, "disk.raw")
	p := b.plan
	b.meta = Meta{Key: p.Key, BuilderVersion: BuilderVersion, Recipe: b.recipe, Plan: *p,
		Append: KernelAppend(p.Arch), Tools: map[string]string{}}

	err = b.phase("mmdebstrap", fmt.Sprintf("%s %s from %s (%d packages)", p.Suite, p.DebArch, p.Mirror, len(p.Packages)), func() error {
		return b.run(ctx, tmp, b.tools["mmdebstrap"], MmdebstrapArgs(p, rootfs)...)
	})
	if err != nil {
		return nil, err
	}
	err = b.phase("customize", "rootfs for cloud-init under QEMU", func() error {
		if err := Customize(rootfs); err != nil {
			return err
		}
		k, err := FindKernel(rootfs)
		if err != nil {
			return err
		}
		notes, err := CheckBootDrivers(k)
		if err != nil {
			return err
		}
		b.meta.Kernel, b.meta.BootDrivers = k.Version, notes
		if b.meta.Sizes.Kernel, err = copyFile(k.Image, filepath.Join(tmp, KernelFile)); err != nil {
			return err
		}
		if b.meta.Sizes.Initrd, err = copyFile(k.Initrd, filepath.Join(tmp, InitrdFile)); err != nil {
			return err
		}
		b.meta.Installed, err = b.installed(ctx, rootfs)
		return err
	})
	if err != nil {
		return nil, err
	}
	err = b.phase("mkfs", "ext4 from the root directory", func() error {
		used, files, err := diskUsage(rootfs)
		if err != nil {
			return err
		}
		b.meta.Sizes.Rootfs, b.meta.Sizes.RootfsFiles = used, files
		size := FilesystemSize(used, b.o.headroom)
		b.meta.Sizes.Filesystem = size
		if err := b.run(ctx, tmp, b.tools["mkfs.ext4"], MkfsArgs(rootfs, raw, size, files)...); err != nil {
			return err
		}
		// The root directory is in the filesystem now; free its space early.
		return removeBuildDir(rootfs)
	})
	if err != nil {
		return nil, err
	}
	disk := filepath.Join(tmp, DiskFile)
	err = b.phase("convert", "to qcow2", func() error {
		if err := b.run(ctx, tmp, b.tools["qemu-img"], ConvertArgs(raw, disk, b.o.compress)...); err != nil {
			return err
		}
		if err := os.Remove(raw); err != nil {
			return err
		}
		var err error
		b.meta.Digest, b.meta.Sizes.Disk, err = digestFile(disk)
		return err
	})
	if err != nil {
		return nil, err
	}
	b.meta.Tools = b.toolVersions(ctx)
	b.meta.BuiltAt = time.Now().UTC()
	b.meta.Phases = append(b.meta.Phases, Phase{Name: "total", Duration: time.Since(start), Seconds: round1(time.Since(start).Seconds())})
	mb, err := json.MarshalIndent(&b.meta, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, MetaFile), append(mb, '\n'), 0o644); err != nil {
		return nil, err
	}
	for _, f := range []string{DiskFile, KernelFile, InitrdFile, MetaFile} {
		if err := syncFile(filepath.Join(tmp, f)); err != nil {
			return nil, err
		}
	}
	if _, statErr := os.Lstat(dir); statErr == nil {
		// --force, or an unusable entry: replace it (we hold its lock).
		if err := removeBuildDir(dir); err != nil {
			return nil, fmt.Errorf("replacing cache entry %s: %w", dir, err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("publishing cache entry: %w", err)
	}
	_ = syncFile(imagesDir)
	a := artifactFor(dir, &b.meta)
	a.Status = StatusBuilt
	fmt.Fprintf(b.o.output, "imagebuild: built %s %s in %.1fs: %s (%s, virtual %s)\n", p.Source(), p.Key,
		time.Since(start).Seconds(), a.Disk, HumanBytes(b.meta.Sizes.Disk), HumanBytes(b.meta.Sizes.Filesystem))
	return a, nil
}

// MmdebstrapArgs is the mmdebstrap command line (without the program) for a
// plan, bootstrapping into rootfs:
//   - root mode: files keep their owners, which mkfs.ext4 -d copies;
//   - minbase, plus the plan's packages;
//   - docs, man pages, info and translations are not unpacked (dpkg
//     path-exclude, kept in the image so later installs skip them too),
//     except copyright files;
//   - the customize hook enables systemd-networkd with the guest's own
//     systemctl.
func MmdebstrapArgs(p *Plan, rootfs string) []string {
	args := []string{
		"--mode=root",
		"--format=directory",
		"--variant=minbase",
		"--architectures=" + p.DebArch,
		"--components=" + strings.Join(p.Components, ","),
		"--include=" + strings.Join(p.Packages, ","),
		"--dpkgopt=path-exclude=/usr/share/doc/*",
		"--dpkgopt=path-include=/usr/share/doc/*/copyright",
		"--dpkgopt=path-exclude=/usr/share/man/*",
		"--dpkgopt=path-exclude=/usr/share/info/*",
		"--dpkgopt=path-exclude=/usr/share/locale/*",
		"--dpkgopt=path-include=/usr/share/locale/locale.alias",
	}
	for _, u := range EnabledUnits() {
		args = append(args, `--customize-hook=chroot "$1" systemctl enable `+u)
	}
	return append(args, p.Suite, rootfs, p.Mirror)
}

// FilesystemSize is the size of the ext4 filesystem for a root directory
// using used bytes: used + 20% + headroom, rounded up to 64 MiB.
func FilesystemSize(used, headroom int64) int64 {
	const step = 64 << 20
	size := used + used/5 + headroom
	return (size + step - 1) / step * step
}

// MkfsArgs is the mkfs.ext4 command line making raw (size bytes) from the
// root directory: 4 KiB blocks whatever the size (the filesystem is grown
// online later), enough inodes for the files plus room, label root.
func MkfsArgs(rootfs, raw string, size, files int64) []string {
	inodes := max(files*2+16384, size/16384)
	return []string{"-q", "-F", "-t", "ext4", "-L", FSLabel, "-b", "4096", "-N", fmt.Sprint(inodes),
		"-d", rootfs, raw, fmt.Sprintf("%dM", size>>20)}
}

// ConvertArgs is the qemu-img command line converting the raw filesystem to
// qcow2 (zero blocks are not stored).
func ConvertArgs(raw, qcow2 string, compress bool) []string {
	args := []string{"convert", "-f", "raw", "-O", "qcow2"}
	if compress {
		args = append(args, "-c", "-o", "compression_type=zstd")
	}
	return append(args, raw, qcow2)
}

// installed lists the image's packages from its dpkg database.
func (b *builder) installed(ctx context.Context, rootfs string) ([]InstalledPackage, error) {
	out, err := b.output(ctx, b.tools["dpkg-query"], "--admindir="+filepath.Join(rootfs, "var/lib/dpkg"),
		"-W", "-f=${Package}\t${Version}\t${Architecture}\n")
	if err != nil {
		return nil, err
	}
	return parseDpkgQuery(out), nil
}

func parseDpkgQuery(out []byte) []InstalledPackage {
	var pkgs []InstalledPackage
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) == 3 && f[0] != "" {
			pkgs = append(pkgs, InstalledPackage{Name: f[0], Version: f[1], Arch: f[2]})
		}
	}
	return pkgs
}

// toolVersions records the versions of the programs that made the image.
func (b *builder) toolVersions(ctx context.Context) map[string]string {
	v := map[string]string{}
	for name, args := range map[string][]string{
		"mmdebstrap": {"--version"}, "qemu-img": {"--version"},
	} {
		if out, err := b.output(ctx, b.tools[name], args...); err == nil {
			v[name] = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
		}
	}
	if out, err := b.output(ctx, b.tools["dpkg-query"], "-W", "-f=${Version}", "e2fsprogs"); err == nil {
		v["e2fsprogs"] = strings.TrimSpace(string(out))
	}
	return v
}

func copyFile(src, dst string) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, err
}

func digestFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), n, nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// diskUsage sums the space the files of a directory tree take in 4 KiB
// blocks, and counts its inodes. Hard links are counted once per name (an
// overestimate, which is on the safe side).
func diskUsage(root string) (used, files int64, err error) {
	const block = 4096
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		files++
		switch {
		case d.IsDir():
			used += block
		case d.Type().IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			used += (fi.Size() + block - 1) / block * block
		case d.Type()&fs.ModeSymlink != 0:
			if t, err := os.Readlink(p); err == nil && len(t) > 59 {
				used += block // longer targets do not fit in the inode
			}
		}
		return nil
	})
	return used, files, err
}

// HumanBytes formats a size in binary units: 1.5 GiB.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
