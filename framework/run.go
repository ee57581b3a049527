package framework

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/config"
	"github.com/guestcatalog/guestcatalog/framework/intervals"
	"github.com/guestcatalog/guestcatalog/framework/machine"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
	"github.com/guestcatalog/guestcatalog/framework/report"
	"github.com/guestcatalog/guestcatalog/framework/testimage"
	"github.com/guestcatalog/guestcatalog/framework/version"
)

// Run is one verification run: the catalog it draws templates from, the
// cache, the accelerator policy, the intervals, where reports and artifacts
// go, and what it has found so far (reports, guests kept after a failure).
// The CLI builds one from its flags, each suite from the environment
// (framework/config); specs get it as an argument. It holds all of the
// framework's state: two Runs in one process share nothing.
type Run struct {
	cfg        config.Config
	cat        *catalog.Catalog
	ivals      *intervals.Set
	progress   io.Writer // download/build progress, kept-guest notes; nil: none
	lines      io.Writer // one line per check (the CLI); nil: none
	verbose    bool
	onEvent    func(machine.Event) // live progress (WithEvents); nil: none
	linePrefix bool                // "[template] " before check lines
	params     map[string]string   // --set: every template is resolved with them

	// labelFilter is the suite's label filter (ginkgo.GinkgoLabelFilter;
	// a test sets its own): a spec it leaves out is not recorded.
	labelFilter func() string

	testImages func() (testImageData, error) // built once per run
	tool       version.Info                  // what produced the run, in every report

	mu       sync.Mutex
	reports  map[string]*report.Template
	bootEnds map[string]time.Time
	kept     []*machine.Machine
}

// RunOption configures NewRun.
type RunOption func(*Run)

// WithCatalog uses an already loaded catalog instead of loading the one the
// config names (the CLI loads it first to resolve its arguments).
func WithCatalog(c *catalog.Catalog) RunOption { return func(r *Run) { r.cat = c } }

// WithProgress sends download and build progress, and how to reach a kept
// guest, to w.
func WithProgress(w io.Writer) RunOption { return func(r *Run) { r.progress = w } }

// WithCheckLines prints one line per finished check, and one per ready
// guest, to w (the CLI's output).
func WithCheckLines(w io.Writer) RunOption { return func(r *Run) { r.lines = w } }

// WithVerbose streams boot progress to the progress writer rather than to
// the spec's GinkgoWriter.
func WithVerbose(v bool) RunOption { return func(r *Run) { r.verbose = v } }

// WithParams resolves every template with these param values (--set).
func WithParams(p map[string]string) RunOption { return func(r *Run) { r.params = p } }

// NewRun checks cfg, loads its intervals and (unless WithCatalog) its
// catalog, and returns the run. Nothing is downloaded or booted.
func NewRun(ctx context.Context, cfg config.Config, opts ...RunOption) (*Run, error) {
	if err := cfg.Validate(func(f string) string { return f }); err != nil {
		return nil, err
	}
	if cfg.CacheDir == "" {
		return nil, fmt.Errorf("framework.NewRun: config.CacheDir must be set (config.DefaultCacheDir)")
	}
	if cfg.ArtifactsDir == "" {
		cfg.ArtifactsDir = config.DefaultArtifactsDir(cfg.CacheDir)
	}
	if abs, err := filepath.Abs(cfg.ArtifactsDir); err == nil {
		cfg.ArtifactsDir = abs
	}
	r := &Run{cfg: cfg, reports: map[string]*report.Template{}, bootEnds: map[string]time.Time{}}
	for _, o := range opts {
		o(r)
	}
	var err error
	if r.ivals, err = cfg.Intervals(); err != nil {
		return nil, fmt.Errorf("intervals: %w", err)
	}
	// A foreign-arch run (aarch64 guests on an x86_64 host) gets the
	// measured foreign factor (defaults.yaml `foreign:`).
	r.ivals = r.ivals.ForGuest(cfg.Arch, catalog.HostArch())
	if r.cat == nil {
		if r.cat, err = LoadCatalog(ctx, cfg); err != nil {
			return nil, err
		}
	}
	r.testImages = sync.OnceValues(buildTestImages)
	r.tool = version.Get()
	return r, nil
}

// Config is the run's configuration.
func (r *Run) Config() config.Config { return r.cfg }

// Intervals are the run's named intervals (unscaled set).
func (r *Run) Intervals() *intervals.Set { return r.ivals }

// Resolve resolves a template name or alias in the run's catalog.
func (r *Run) Resolve(name string) (*catalog.Template, error) {
	var opts []catalog.ResolveOption
	if r.params != nil {
		opts = append(opts, catalog.WithParams(r.params))
	}
	t, err := r.cat.Resolve(name, opts...)
	if err != nil {
		return nil, fmt.Errorf("template %q: %w", name, err)
	}
	return t, nil
}

// Selected returns the templates of one engine ("" = distros alone) the run
// verifies: those named in the config; else, when the config layers
// catalogs of its own, the templates in those (GUESTCATALOG_CATALOG=dir go
// test ./suites/... verifies that directory); else every template of the
// catalog. The config's tier, if set, narrows the last two. engine
// AnyOtherEngine selects templates whose engine has no suite of its own.
func (r *Run) Selected(engine string) ([]string, error) {
	var names []string
	match := func(t *catalog.Template) bool {
		e := EngineOf(t)
		if engine == AnyOtherEngine {
			return !slices.Contains(ShippedEngines(), e)
		}
		return e == engine
	}
	if want := r.cfg.Templates; len(want) > 0 {
		for _, n := range want {
			t, err := r.Resolve(n)
			if err != nil {
				return nil, err
			}
			if match(t) {
				names = append(names, t.Name)
			}
		}
	} else {
		var own map[string]bool
		if len(r.cfg.Catalogs) > 0 {
			own = map[string]bool{}
			for _, p := range r.cfg.Catalogs {
				for _, n := range r.cat.TemplatesIn(p) {
					own[n] = true
				}
			}
		}
		for _, t := range r.cat.Templates() {
			if match(t) && (r.cfg.Tier == "" || t.Tier == r.cfg.Tier) && (own == nil || own[t.Name]) {
				names = append(names, t.Name)
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// AnyOtherEngine selects, in Selected, the templates whose engine has no
// shipped suite (a user's own engine): suites/custom runs them.
const AnyOtherEngine = "*"

// ShippedEngines are the engines with a suite of their own ("" = none).
func ShippedEngines() []string {
	return []string{"", "containerd", "docker", "podman", "apptainer", "k3s", "k0s", "rke2", "k8s", "usernetes"}
}

// EngineOf is the template's engine name, "" for a distro alone.
func EngineOf(t *catalog.Template) string {
	if t.Engine == nil {
		return ""
	}
	return t.Engine.Name
}

// Labels are the Ginkgo labels of a template's specs.
func (r *Run) Labels(t *catalog.Template) []string {
	distro := t.Distro.Name
	if t.Distro.Release != "" {
		distro += "-" + t.Distro.Release
	}
	engine := EngineOf(t)
	if engine == "" {
		engine = "none"
	}
	return []string{"template:" + t.Name, "engine:" + engine, "distro:" + distro, "arch:" + r.cfg.Arch, "tier:" + t.Tier}
}

// policyAccel is the accelerator a spec-tree timeout is scaled for before
// any guest runs: the configured one, "auto" counting as the slowest (TCG)
// since a KVM attempt may fall back to it. Inside a spec, Guest.Interval
// scales for the accelerator that guest actually runs on.
func (r *Run) policyAccel() string {
	if a := r.cfg.Accel; a != "" && a != qemu.AccelAuto {
		return a
	}
	return qemu.AccelTCG
}

// Interval is a named interval ("engine", "default/wait-ssh", ...) scaled
// for the run's accelerator policy; specs use it for NodeTimeout while the
// tree is built. An unknown name panics: names are compile-time constants.
func (r *Run) Interval(name string) time.Duration {
	return r.ivals.MustGet(name, r.policyAccel())
}

// BootTimeout bounds a template's BeforeAll: image, boot, provisioning and
// probes, each phase with its own interval, plus an image build.
func (r *Run) BootTimeout(t *catalog.Template) time.Duration {
	// Image download or local build; a foreign-arch build runs the guest's
	// package scripts through qemu-user, slower by the foreign factor.
	total := time.Duration(float64(30*time.Minute) * r.ivals.Factor())
	for _, n := range []string{"default/wait-kernel", "default/wait-userspace", "default/wait-ssh", "default/wait-cloud-init"} {
		total += r.Interval(n)
	}
	for _, p := range t.Probes {
		d, err := machine.ProbeBudget(r.ivals, p, r.policyAccel())
		if err != nil {
			d = r.Interval("default/probe")
		}
		total += d
	}
	// A KVM attempt that stalls costs one watchdog interval before TCG.
	return total + r.Interval("accel/kvm-stall")
}

// LoadCatalog loads the catalog a config names: the built-in one (unless
// NoBuiltin) with the config's files and directories layered over it.
func LoadCatalog(ctx context.Context, cfg config.Config) (*catalog.Catalog, error) {
	opts := []catalog.LoadOption{catalog.WithPaths(cfg.Catalogs...)}
	if cfg.NoBuiltin {
		opts = append(opts, catalog.WithoutBuiltin())
	}
	c, err := catalog.Load(ctx, opts...)
	if err != nil && c == nil {
		return nil, fmt.Errorf("loading the catalog: %w", err)
	}
	// Problems of single documents are reported when a template is
	// resolved; the catalog itself is usable.
	return c, nil
}

// testImageData are the bytes of the local busybox images.
type testImageData struct{ rootfs, oci []byte }

func buildTestImages() (testImageData, error) {
	var rootfs, oci bytes.Buffer
	if err := testimage.RootfsTar(&rootfs, ""); err != nil {
		return testImageData{}, err
	}
	if err := testimage.OCIArchive(&oci, TestImageRef, rootfs.Bytes(), []string{"/bin/sh"}); err != nil {
		return testImageData{}, err
	}
	return testImageData{rootfs.Bytes(), oci.Bytes()}, nil
}
