package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/download"
	"github.com/guestcatalog/guestcatalog/framework/intervals"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
)

// Environment variables, the same names the CLI's help texts give.
const (
	EnvTemplates     = "GUESTCATALOG_TEMPLATES"
	EnvCatalog       = "GUESTCATALOG_CATALOG"
	EnvNoBuiltin     = "GUESTCATALOG_NO_BUILTIN"
	EnvOffline       = "GUESTCATALOG_OFFLINE"
	EnvAccel         = "GUESTCATALOG_ACCEL"
	EnvArch          = "GUESTCATALOG_ARCH"
	EnvTier          = "GUESTCATALOG_TIER"
	EnvCache         = "GUESTCATALOG_CACHE"
	EnvMirrors       = "GUESTCATALOG_MIRRORS"
	EnvArtifacts     = "ARTIFACTS"
	EnvReportDir     = "GUESTCATALOG_REPORT_DIR"
	EnvKeepOnFailure = "GUESTCATALOG_KEEP_ON_FAILURE"
	EnvReuse         = "GUESTCATALOG_REUSE"
	EnvIntervals     = intervals.EnvFile
	EnvFailOnSkip    = "GUESTCATALOG_FAIL_ON_SKIP"
	// EnvAllowUnpinned is --allow-unpinned.
	EnvAllowUnpinned = "GUESTCATALOG_ALLOW_UNPINNED"
	EnvRunRoot       = qemu.EnvRunRoot
	// EnvProbeKernel is the kernel `catalog doctor` probes with.
	EnvProbeKernel = qemu.EnvProbeKernel
	// EnvImagesBaseURL is `catalog images --base-url`.
	EnvImagesBaseURL = "GUESTCATALOG_IMAGES_BASE_URL"
)

// Lookup reads one environment variable.
type Lookup func(string) (string, bool)

// Env is an environment given as KEY=VALUE entries (os.Environ() in main,
// a literal in tests).
type Env []string

// Lookup finds a variable; the last entry of a name wins, as in exec.
func (e Env) Lookup(name string) (string, bool) {
	for i := len(e) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(e[i], "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

// Config is how one run goes: what the CLI's flags or a suite's
// environment asked for, validated. framework.NewRun turns it into a Run.
type Config struct {
	// Templates to verify (names, aliases or template files); empty means
	// every template of the catalog.
	Templates []string
	// Catalogs are files or directories layered over the built-in catalog.
	Catalogs []string
	// NoBuiltin leaves the built-in catalog out: the Catalogs alone.
	NoBuiltin bool
	// Offline: locally built images and the cache only.
	Offline bool
	// Accel: auto, kvm or tcg.
	Accel string
	// Arch to verify (x86_64 or aarch64); default the host's.
	Arch string
	// Tier restricts "every template" to one tier ("" = any).
	Tier string
	// CacheDir for images and provisioned disks.
	CacheDir string
	// Mirrors rewrite download URLs (PREFIX=MIRROR).
	Mirrors []string
	// ArtifactsDir receives one directory per template.
	ArtifactsDir string
	// ReportDir receives <template>/report.json (and junit.xml); "" = none.
	ReportDir string
	// KeepOnFailure leaves a failed guest running.
	KeepOnFailure bool
	// Reuse starts from a provisioned disk when one matches.
	Reuse bool
	// IntervalsFile overrides named intervals (YAML).
	IntervalsFile string
	// FailOnSkip makes a run whose templates were all skipped fail.
	FailOnSkip bool
	// AllowUnpinned runs templates whose guest downloads what the catalog
	// does not pin (engine.unpinned); without it they are skipped.
	AllowUnpinned bool
	// IntervalEnv are GUESTCATALOG_INTERVAL_* overrides (name → value).
	IntervalEnv map[string]string
	// RunRoot holds the run directories of QEMU (sockets, overlays):
	// $GUESTCATALOG_RUNTIME_DIR, else $XDG_RUNTIME_DIR/guestcatalog, else
	// qemu.DefaultRunRoot().
	RunRoot string
}

// Arches a run may verify.
func Arches() []string { return []string{"x86_64", "aarch64"} }

// Accels are the accelerator policies.
func Accels() []string { return []string{qemu.AccelAuto, qemu.AccelKVM, qemu.AccelTCG} }

// Tiers a run may be restricted to.
func Tiers() []string { return []string{catalog.TierNightly, catalog.TierExperimental} }

// Default is the configuration with nothing set: auto accelerator, the
// host's arch, the default cache and artifacts directories, reuse on.
func Default(env Lookup) (Config, error) {
	cache, err := DefaultCacheDir(env)
	if err != nil {
		return Config{}, err
	}
	runRoot, _ := env("XDG_RUNTIME_DIR")
	runRoot = qemu.RunRootIn(runRoot)
	if v, ok := env(EnvRunRoot); ok && v != "" {
		runRoot = v
	}
	return Config{
		RunRoot:      runRoot,
		Accel:        qemu.AccelAuto,
		Arch:         catalog.HostArch(),
		CacheDir:     cache,
		ArtifactsDir: DefaultArtifactsDir(cache),
		Reuse:        true,
	}, nil
}

// DefaultArtifactsDir is where a run's artifacts go unless $ARTIFACTS or
// --artifacts says otherwise: <cache>/artifacts, the user's own directory
// (a shared directory under /tmp would mix, and expose, every user's guests).
func DefaultArtifactsDir(cacheDir string) string { return filepath.Join(cacheDir, "artifacts") }

// DefaultCacheDir is $GUESTCATALOG_CACHE, else $XDG_CACHE_HOME/guestcatalog,
// else ~/.cache/guestcatalog; always absolute. It is the only definition.
func DefaultCacheDir(env Lookup) (string, error) {
	if d, ok := env(EnvCache); ok && d != "" {
		return filepath.Abs(d)
	}
	if d, ok := env("XDG_CACHE_HOME"); ok && filepath.IsAbs(d) {
		return filepath.Join(d, "guestcatalog"), nil
	}
	if h, ok := env("HOME"); ok && h != "" {
		return filepath.Join(h, ".cache", "guestcatalog"), nil
	}
	return "", fmt.Errorf("finding the cache directory: neither $%s, $XDG_CACHE_HOME nor $HOME is set", EnvCache)
}

// FromEnv reads the configuration of a run from the environment (the
// variables above) and validates it; every problem is reported at once,
// each naming its variable.
func FromEnv(environ Env) (Config, error) {
	c, err := Parse(environ)
	if c.CacheDir == "" {
		return c, err // no usable defaults
	}
	return c, errors.Join(err, c.validate(envNames))
}

// Parse reads the environment like FromEnv but checks only what cannot be
// stored (a boolean that is not one); the CLI applies its flags over the
// result and then calls Validate, so a flag can correct the environment.
func Parse(environ Env) (Config, error) {
	env := environ.Lookup
	c, err := Default(env)
	if err != nil {
		return c, err
	}
	var errs []error
	str := func(name string, dst *string) {
		if v, ok := env(name); ok && v != "" {
			*dst = v
		}
	}
	boolean := func(name string, dst *bool) {
		v, ok := env(name)
		if !ok || v == "" {
			return
		}
		b, err := ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			return
		}
		*dst = b
	}
	c.Templates = SplitList(lookup(env, EnvTemplates))
	if v := lookup(env, EnvCatalog); v != "" {
		c.Catalogs = filepath.SplitList(v)
	}
	boolean(EnvNoBuiltin, &c.NoBuiltin)
	boolean(EnvOffline, &c.Offline)
	str(EnvAccel, &c.Accel)
	str(EnvArch, &c.Arch)
	str(EnvTier, &c.Tier)
	c.Mirrors = SplitList(lookup(env, EnvMirrors))
	str(EnvArtifacts, &c.ArtifactsDir)
	str(EnvReportDir, &c.ReportDir)
	boolean(EnvKeepOnFailure, &c.KeepOnFailure)
	boolean(EnvReuse, &c.Reuse)
	str(EnvIntervals, &c.IntervalsFile)
	boolean(EnvFailOnSkip, &c.FailOnSkip)
	boolean(EnvAllowUnpinned, &c.AllowUnpinned)
	for _, kv := range environ {
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, intervals.EnvPrefix) {
			if c.IntervalEnv == nil {
				c.IntervalEnv = map[string]string{}
			}
			c.IntervalEnv[k] = v
		}
	}
	return c, errors.Join(errs...)
}

func lookup(env Lookup, name string) string {
	v, _ := env(name)
	return v
}

// SplitList splits a list given as one string: commas, spaces or newlines.
func SplitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' })
}

// ParseBool accepts 1/0, true/false and yes/no in any case; anything else
// is an error (GUESTCATALOG_OFFLINE=ture must not silently mean "off").
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "yes":
		return true, nil
	case "0", "false", "no":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (want 1/0, true/false or yes/no)", s)
}

// envNames names fields by their environment variables.
func envNames(f string) string {
	switch f {
	case "accel":
		return EnvAccel
	case "arch":
		return EnvArch
	case "tier":
		return EnvTier
	case "mirrors":
		return EnvMirrors
	case "intervals":
		return EnvIntervals
	case "catalog":
		return EnvCatalog
	}
	return f
}

// FlagNames names fields by the CLI's flags in Validate's messages.
func FlagNames(f string) string {
	switch f {
	case "mirrors":
		return "--mirror"
	case "catalog":
		return "--catalog"
	}
	return "--" + f
}

// Validate checks every field and reports every problem at once; name
// says how a field is called in the messages (FlagNames for the CLI).
func (c Config) Validate(name func(field string) string) error {
	return c.validate(name)
}

func (c Config) validate(name func(string) string) error {
	var errs []error
	if err := oneOf(c.Accel, Accels()); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", name("accel"), err))
	}
	if err := oneOf(c.Arch, Arches()); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", name("arch"), err))
	}
	if c.Tier != "" {
		if err := oneOf(c.Tier, Tiers()); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name("tier"), err))
		}
	}
	if _, err := download.ParseMirrors(c.Mirrors...); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", name("mirrors"), err))
	}
	if _, err := c.Intervals(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", name("intervals"), err))
	}
	for _, p := range c.Catalogs {
		if _, err := os.Stat(p); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name("catalog"), err))
		}
	}
	if c.NoBuiltin && len(c.Catalogs) == 0 {
		errs = append(errs, fmt.Errorf("%s: without the built-in catalog, name at least one catalog", name("catalog")))
	}
	return errors.Join(errs...)
}

// Intervals loads the named intervals with the run's overrides file.
func (c Config) Intervals() (*intervals.Set, error) {
	return intervals.Load(intervals.WithFile(c.IntervalsFile), intervals.WithEnv(c.IntervalEnv))
}

// oneOf checks v against the allowed values, suggesting the closest one
// for a typo ("kmv": did you mean "kvm"?).
func oneOf(v string, allowed []string) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	msg := fmt.Sprintf("%q is not one of %s", v, strings.Join(allowed, ", "))
	if s := closest(v, allowed); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return errors.New(msg)
}

// closest is the allowed value within edit distance 2 of v (a swap counts
// once), or "".
func closest(v string, allowed []string) string {
	best, bestD := "", 3
	for _, a := range allowed {
		if d := distance(strings.ToLower(v), a); d < bestD {
			best, bestD = a, d
		}
	}
	return best
}

// distance is the optimal string alignment distance (Levenshtein with
// adjacent transpositions).
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
