package framework

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/guestcatalog/guestcatalog/catalog"
)

// Config is how the suites run; the CLI fills it from flags, `go test` from
// the environment (FromEnv).
type Config struct {
	// Templates to verify (names or aliases); empty means every template.
	Templates []string
	// Offline: locally built images and the cache only.
	Offline bool
	// Accel: auto, kvm or tcg.
	Accel string
	// Arch to verify; default the host's.
	Arch string
	// CacheDir for images and provisioned disks ("" = the default).
	CacheDir string
	// Mirrors rewrite download URLs (PREFIX=MIRROR).
	Mirrors []string
	// ArtifactsDir receives one directory per template.
	ArtifactsDir string
	// ReportDir receives <template>/report.json (and junit.xml).
	ReportDir string
	// KeepOnFailure leaves a failed guest running and prints how to get in.
	KeepOnFailure bool
	// Reuse starts from a provisioned disk when one matches (default true).
	Reuse bool
	// IntervalsFile overrides named intervals (YAML).
	IntervalsFile string
	// Logger for progress (boot phases, downloads); nil = GinkgoWriter.
	Logger *slog.Logger
	// Verbose streams boot progress (phases, console failures) to Progress.
	Verbose bool
	// Progress receives download/build progress lines (nil = none).
	Progress interface{ Write([]byte) (int, error) }
}

// FromEnv reads the Config of a `go test ./suites/...` run:
// GUESTCATALOG_TEMPLATES (space or comma separated), GUESTCATALOG_OFFLINE=1,
// GUESTCATALOG_ACCEL, GUESTCATALOG_ARCH, GUESTCATALOG_CACHE,
// GUESTCATALOG_MIRRORS, ARTIFACTS, GUESTCATALOG_REPORT_DIR,
// GUESTCATALOG_KEEP_ON_FAILURE=1, GUESTCATALOG_REUSE=0,
// GUESTCATALOG_INTERVALS.
func FromEnv() Config {
	split := func(s string) []string {
		return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' })
	}
	c := Config{
		Templates:     split(os.Getenv("GUESTCATALOG_TEMPLATES")),
		Offline:       os.Getenv("GUESTCATALOG_OFFLINE") == "1",
		Accel:         os.Getenv("GUESTCATALOG_ACCEL"),
		Arch:          os.Getenv("GUESTCATALOG_ARCH"),
		CacheDir:      os.Getenv("GUESTCATALOG_CACHE"),
		Mirrors:       split(os.Getenv("GUESTCATALOG_MIRRORS")),
		ArtifactsDir:  os.Getenv("ARTIFACTS"),
		ReportDir:     os.Getenv("GUESTCATALOG_REPORT_DIR"),
		KeepOnFailure: os.Getenv("GUESTCATALOG_KEEP_ON_FAILURE") == "1",
		Reuse:         os.Getenv("GUESTCATALOG_REUSE") != "0",
		IntervalsFile: os.Getenv("GUESTCATALOG_INTERVALS"),
	}
	return c
}

func (c *Config) defaults() {
	if c.Accel == "" {
		c.Accel = "auto"
	}
	if c.Arch == "" {
		c.Arch = catalog.HostArch()
	}
	if c.ArtifactsDir == "" {
		c.ArtifactsDir = filepath.Join(os.TempDir(), "guestcatalog-artifacts")
	}
	if abs, err := filepath.Abs(c.ArtifactsDir); err == nil {
		c.ArtifactsDir = abs
	}
}

var (
	stateMu  sync.Mutex
	config   *Config
	cat      *catalog.Catalog
	catErr   error
	catOnce  sync.Once
	runStart = time.Now()
)

// Configure sets the run's configuration; call it before the spec tree is
// built. Without it the first use reads FromEnv.
func Configure(c Config) {
	c.defaults()
	stateMu.Lock()
	defer stateMu.Unlock()
	config = &c
}

func current() *Config {
	stateMu.Lock()
	defer stateMu.Unlock()
	if config == nil {
		c := FromEnv()
		c.defaults()
		config = &c
	}
	return config
}

// Catalog is the shipped catalog, loaded once.
func Catalog() (*catalog.Catalog, error) {
	catOnce.Do(func() { cat, catErr = catalog.LoadEmbedded() })
	return cat, catErr
}

// MustResolve resolves a template while the spec tree is built; an unknown
// name stops the run with the catalog's message.
func MustResolve(name string) *catalog.Template {
	c, err := Catalog()
	if err != nil {
		panic(fmt.Sprintf("loading the catalog: %v", err))
	}
	t, err := c.Resolve(name)
	if err != nil {
		panic(fmt.Sprintf("template %q: %v", name, err))
	}
	return t
}

// Selected returns the templates of one engine ("" = distros alone) the run
// should verify: those named in Config.Templates, else all of the catalog's.
func Selected(engine string) []string {
	c, err := Catalog()
	if err != nil {
		panic(fmt.Sprintf("loading the catalog: %v", err))
	}
	var names []string
	if want := current().Templates; len(want) > 0 {
		for _, n := range want {
			t := MustResolve(n)
			if engineOf(t) == engine {
				names = append(names, t.Name)
			}
		}
	} else {
		for _, t := range c.Templates() {
			if engineOf(t) == engine {
				names = append(names, t.Name)
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func engineOf(t *catalog.Template) string {
	if t.Engine == nil {
		return ""
	}
	return t.Engine.Name
}

// TemplateLabels are the Ginkgo labels of a template's specs.
func TemplateLabels(t *catalog.Template) []string {
	distro := t.Distro.Name
	if t.Distro.Release != "" {
		distro += "-" + t.Distro.Release
	}
	engine := engineOf(t)
	if engine == "" {
		engine = "none"
	}
	return []string{"template:" + t.Name, "engine:" + engine, "distro:" + distro, "arch:" + current().Arch, "tier:" + t.Tier}
}
