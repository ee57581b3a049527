package intervals

import (
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
)

// Accelerators an interval can be scaled for.
const (
	AccelKVM = "kvm"
	AccelTCG = "tcg"
	AccelHVF = "hvf"
)

// Environment variables: framework/config reads them and hands them to
// Load (WithFile, WithEnv); this package reads no environment.
const (
	// EnvFile names a YAML file of overrides, like --intervals FILE.
	EnvFile = "GUESTCATALOG_INTERVALS"
	// EnvPrefix + NAME (see EnvName) overrides one interval with a final,
	// unscaled duration.
	EnvPrefix = "GUESTCATALOG_INTERVAL_"
	// EnvScalePrefix + ACCEL overrides one accelerator's scale (a float).
	EnvScalePrefix = "GUESTCATALOG_INTERVAL_SCALE_"
)

// ErrUnknown is returned (wrapped) for a name that is not defined.
var ErrUnknown = errors.New("unknown interval")

//go:embed defaults.yaml
var defaultsYAML []byte

func accels() []string {
	return []string{AccelKVM, AccelTCG, AccelHVF}
}

// Guest architectures a foreign factor can be given for.
const (
	ArchX8664   = "x86_64"
	ArchAarch64 = "aarch64"
)

func knownArch(a string) bool { return a == ArchX8664 || a == ArchAarch64 }

// entry is one interval after parsing.
type entry struct {
	base   time.Duration
	scaled bool
	per    map[string]time.Duration // explicit per-accelerator values
	final  *time.Duration           // from the environment: used as is
	source string
}

// Set is a loaded set of intervals. It is immutable and safe for
// concurrent use.
type Set struct {
	scale   map[string]float64
	entries map[string]entry
	// foreign is the extra factor per guest arch when it is not the
	// host's (the guest's instructions are translated by TCG: an aarch64
	// guest on an x86_64 host).
	foreign map[string]float64
	// factor multiplies every scaled interval (ForGuest); 0 means 1.
	factor float64
	// guestArch is the foreign arch factor was chosen for ("" native).
	guestArch string
}

// Option changes how Load builds a Set.
type Option func(*loadOptions)

type loadOptions struct {
	files []string
	env   map[string]string
}

// WithFile merges a user file over the defaults (and over files before it).
// An empty path is ignored, so a flag's default can be passed as is.
func WithFile(path string) Option {
	return func(o *loadOptions) {
		if path != "" {
			o.files = append(o.files, path)
		}
	}
}

// WithEnv applies GUESTCATALOG_INTERVAL_SCALE_<ACCEL> and
// GUESTCATALOG_INTERVAL_<NAME> overrides, given as variable name → value
// (framework/config collects them from the environment). A variable that
// names no interval is an error.
func WithEnv(vars map[string]string) Option {
	return func(o *loadOptions) {
		if o.env == nil {
			o.env = map[string]string{}
		}
		maps.Copy(o.env, vars)
	}
}

// Load returns the embedded defaults with the given overrides applied.
func Load(opts ...Option) (*Set, error) {
	var o loadOptions
	for _, opt := range opts {
		opt(&o)
	}
	s, err := parse(defaultsYAML, "defaults.yaml", nil)
	if err != nil {
		return nil, fmt.Errorf("embedded intervals: %w", err)
	}
	for _, f := range o.files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading intervals file: %w", err)
		}
		if s, err = parse(b, f, s); err != nil {
			return nil, err
		}
	}
	if len(o.env) > 0 {
		if err := s.applyEnv(o.env); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Default is the embedded defaults alone.
func Default() (*Set, error) { return Load() }

// Get returns the interval for an accelerator: an explicit per-accelerator
// value if the interval has one, else the base times the accelerator's
// scale (unless the interval is unscaled). An environment override wins
// over both. A name without a "/" also finds "default/<name>", so a
// template's probe may say `timeout: probe`. accel "" means native speed
// (scale 1).
func (s *Set) Get(name, accel string) (time.Duration, error) {
	e, ok := s.entries[name]
	if !ok && !strings.Contains(name, "/") {
		e, ok = s.entries["default/"+name]
	}
	if !ok {
		return 0, fmt.Errorf("interval %q: %w (known: %s)", name, ErrUnknown, strings.Join(s.Names(), ", "))
	}
	if accel != "" && !slices.Contains(accels(), accel) {
		return 0, fmt.Errorf("interval %q: unknown accelerator %q (want one of %s)", name, accel, strings.Join(accels(), ", "))
	}
	if e.final != nil {
		return *e.final, nil
	}
	f := 1.0
	if e.scaled {
		f = s.Factor()
	}
	if d, ok := e.per[accel]; ok {
		return time.Duration(float64(d) * f), nil
	}
	if !e.scaled || accel == "" {
		return time.Duration(float64(e.base) * f), nil
	}
	return time.Duration(float64(e.base) * s.scale[accel] * f), nil
}

// ForeignScale is the factor for a guest of guestArch on a host of
// hostArch: 1 when they are the same or no factor is known for guestArch.
func (s *Set) ForeignScale(guestArch, hostArch string) float64 {
	if guestArch == "" || guestArch == hostArch {
		return 1
	}
	if f, ok := s.foreign[guestArch]; ok {
		return f
	}
	return 1
}

// ForGuest returns the set for a guest of guestArch on a host of hostArch:
// s itself for a native guest, else a copy whose scaled intervals (and
// explicit per-accelerator values) are multiplied by ForeignScale. Final
// values from the environment and `scaled: false` intervals are not.
// It is idempotent: the factor replaces, never compounds, one applied
// before.
func (s *Set) ForGuest(guestArch, hostArch string) *Set {
	f := s.ForeignScale(guestArch, hostArch)
	if f == 1 {
		return s
	}
	c := *s
	c.factor, c.guestArch = f, guestArch
	return &c
}

// Factor is the foreign-arch factor this set applies (1 for a native guest).
func (s *Set) Factor() float64 {
	if s.factor == 0 {
		return 1
	}
	return s.factor
}

// ForeignArch is the guest arch ForGuest applied a factor for ("" native).
func (s *Set) ForeignArch() string { return s.guestArch }

// MustGet is Get for names that are known at compile time; it panics on an
// unknown name (a programming error, not a configuration error).
func (s *Set) MustGet(name, accel string) time.Duration {
	d, err := s.Get(name, accel)
	if err != nil {
		panic(err)
	}
	return d
}

// Resolve accepts either a duration ("90s", "5m": used as is, never scaled)
// or an interval name (looked up with Get). Templates' probe timeouts use it.
func (s *Set) Resolve(value, accel string) (time.Duration, error) {
	v := strings.TrimSpace(value)
	if v == "" {
		return 0, errors.New("empty interval")
	}
	if d, err := time.ParseDuration(v); err == nil {
		if d <= 0 {
			return 0, fmt.Errorf("interval %q: must be positive", value)
		}
		return d, nil
	}
	return s.Get(v, accel)
}

// Scale returns the multiplier for an accelerator (1 when unknown or "").
func (s *Set) Scale(accel string) float64 {
	if f, ok := s.scale[accel]; ok {
		return f
	}
	return 1
}

// Names returns every defined interval name, sorted.
func (s *Set) Names() []string { return slices.Sorted(maps.Keys(s.entries)) }

// Source says where an interval's value came from (a file or an
// environment variable).
func (s *Set) Source(name string) string { return s.entries[name].source }

// file is the YAML shape of defaults.yaml and user files.
type file struct {
	Scale     map[string]float64   `yaml:"scale"`
	Foreign   map[string]float64   `yaml:"foreign"`
	Intervals map[string]fileEntry `yaml:"intervals"`
}

type fileEntry struct {
	Base   string `yaml:"base"`
	Scaled *bool  `yaml:"scaled"`
	KVM    string `yaml:"kvm"`
	TCG    string `yaml:"tcg"`
	HVF    string `yaml:"hvf"`
}

// UnmarshalYAML accepts a plain duration or the mapping form.
func (f *fileEntry) UnmarshalYAML(b []byte) error {
	var s string
	if err := yaml.Unmarshal(b, &s); err == nil {
		*f = fileEntry{Base: s}
		return nil
	}
	type plain fileEntry
	var p plain
	if err := yaml.UnmarshalWithOptions(b, &p, yaml.Strict()); err != nil {
		return err
	}
	*f = fileEntry(p)
	return nil
}

// parse reads one file and merges it over base (nil: start empty).
// Every problem is reported, each naming the field.
func parse(b []byte, source string, base *Set) (*Set, error) {
	var f file
	if err := yaml.UnmarshalWithOptions(b, &f, yaml.Strict()); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	s := &Set{scale: map[string]float64{}, entries: map[string]entry{}, foreign: map[string]float64{}}
	if base != nil {
		maps.Copy(s.scale, base.scale)
		maps.Copy(s.entries, base.entries)
		maps.Copy(s.foreign, base.foreign)
	}
	var errs []error
	for _, a := range slices.Sorted(maps.Keys(f.Scale)) {
		v := f.Scale[a]
		switch {
		case !slices.Contains(accels(), a):
			errs = append(errs, fmt.Errorf("%s: scale.%s: unknown accelerator (want one of %s)", source, a, strings.Join(accels(), ", ")))
		case v <= 0:
			errs = append(errs, fmt.Errorf("%s: scale.%s: must be positive, got %v", source, a, v))
		default:
			s.scale[a] = v
		}
	}
	for _, a := range slices.Sorted(maps.Keys(f.Foreign)) {
		v := f.Foreign[a]
		switch {
		case !knownArch(a):
			errs = append(errs, fmt.Errorf("%s: foreign.%s: unknown arch (want %s or %s)", source, a, ArchX8664, ArchAarch64))
		case v < 1:
			errs = append(errs, fmt.Errorf("%s: foreign.%s: must be at least 1 (emulating an arch is never faster), got %v", source, a, v))
		default:
			s.foreign[a] = v
		}
	}
	for _, name := range slices.Sorted(maps.Keys(f.Intervals)) {
		fe := f.Intervals[name]
		field := "intervals." + name
		if name == "" || strings.ContainsAny(name, " \t") {
			errs = append(errs, fmt.Errorf("%s: %s: invalid name", source, field))
			continue
		}
		e := entry{scaled: true, per: map[string]time.Duration{}, source: source}
		if fe.Scaled != nil {
			e.scaled = *fe.Scaled
		}
		var err error
		if e.base, err = parseDur(fe.Base); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w", source, field+baseSuffix(fe), err))
		}
		for a, v := range map[string]string{AccelKVM: fe.KVM, AccelTCG: fe.TCG, AccelHVF: fe.HVF} {
			if v == "" {
				continue
			}
			d, err := parseDur(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %s.%s: %w", source, field, a, err))
				continue
			}
			e.per[a] = d
		}
		s.entries[name] = e
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return nil, errors.Join(errs...)
	}
	return s, nil
}

func baseSuffix(fe fileEntry) string {
	if fe.Scaled != nil || fe.KVM != "" || fe.TCG != "" || fe.HVF != "" {
		return ".base"
	}
	return ""
}

func parseDur(v string) (time.Duration, error) {
	if strings.TrimSpace(v) == "" {
		return 0, errors.New("must be set (a duration such as 90s or 5m)")
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want e.g. 90s or 5m)", v)
	}
	if d <= 0 {
		return 0, fmt.Errorf("must be positive, got %s", v)
	}
	return d, nil
}

// EnvName returns the environment variable that overrides an interval:
// GUESTCATALOG_INTERVAL_ + the name upper-cased with every other character
// than a letter or a digit replaced by "_" (default/wait-ssh →
// GUESTCATALOG_INTERVAL_DEFAULT_WAIT_SSH).
func EnvName(name string) string {
	var b strings.Builder
	b.WriteString(EnvPrefix)
	for _, r := range strings.ToUpper(name) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func (s *Set) applyEnv(env map[string]string) error {
	byEnv := map[string]string{}
	for name := range s.entries {
		byEnv[EnvName(name)] = name
	}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(env)) {
		v := env[k]
		switch {
		case strings.HasPrefix(k, EnvScalePrefix):
			a := strings.ToLower(strings.TrimPrefix(k, EnvScalePrefix))
			f, err := strconv.ParseFloat(v, 64)
			switch {
			case !slices.Contains(accels(), a):
				errs = append(errs, fmt.Errorf("%s: unknown accelerator %q", k, a))
			case err != nil || f <= 0:
				errs = append(errs, fmt.Errorf("%s: want a positive number, got %q", k, v))
			default:
				s.scale[a] = f
			}
		case strings.HasPrefix(k, EnvPrefix):
			name, ok := byEnv[k]
			if !ok {
				errs = append(errs, fmt.Errorf("%s: no interval has this name (known: %s)", k, strings.Join(s.Names(), ", ")))
				continue
			}
			d, err := parseDur(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
				continue
			}
			e := s.entries[name]
			e.final, e.source = &d, k
			s.entries[name] = e
		}
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return errors.Join(errs...)
	}
	return nil
}
