package matrix

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/guestcatalog/guestcatalog/catalog"
)

// Tier selectors accepted by Options.Tier besides the catalog's tiers.
const (
	// TierAll selects every template whatever its tier.
	TierAll = "all"
)

// DefaultRunners maps an arch to the GitHub-hosted runner label that runs it:
// x86_64 runners have KVM (enabled by a udev rule in the workflow); aarch64
// runs on GitHub's arm64 runners.
func DefaultRunners() map[string]string {
	return map[string]string{
		catalog.ArchX8664:   "ubuntu-24.04",
		catalog.ArchAarch64: "ubuntu-24.04-arm",
	}
}

// archOrder is the order arches appear in for one template.
var archOrder = []string{catalog.ArchX8664, catalog.ArchAarch64}

// Entry is one job of the matrix: one template on one arch.
type Entry struct {
	Template string `json:"template"`
	Arch     string `json:"arch"`
	// Runner is the runs-on label.
	Runner string `json:"runner"`
	// Timeout is the job's timeout-minutes.
	Timeout int `json:"timeout"`
	// Offline is true when the template verifies without network: it has a
	// local build recipe for the arch and its engine needs nothing from
	// outside (no `requires`). The workflow then passes --offline.
	Offline bool `json:"offline"`
	// AllowUnpinned is true when the template's guest downloads what the
	// catalog does not pin (engine.unpinned): the nightly runners are
	// connected, and the workflow passes --allow-unpinned so that such a
	// template runs, explicitly, rather than being SKIPPED.
	AllowUnpinned bool `json:"allowUnpinned"`
	// CacheKey keys actions/cache for the images the entry uses: a hash of
	// the arch's image URLs and digests, and of its build recipes (with the
	// baked packages). Templates sharing an image share the key.
	CacheKey string `json:"cacheKey"`
	// Estimate is the estimated minutes, used to balance shards.
	Estimate int `json:"-"`
}

// Matrix is the value of strategy.matrix.
type Matrix struct {
	Include []Entry `json:"include"`
}

// Shard selects part i (1-based) of n of the matrix. The zero value is the
// whole matrix.
type Shard struct {
	Index, Count int
}

// ParseShard parses "i/n" with 1 ≤ i ≤ n; "" is the whole matrix.
func ParseShard(s string) (Shard, error) {
	if s == "" {
		return Shard{}, nil
	}
	is, ns, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(is))
	n, err2 := strconv.Atoi(strings.TrimSpace(ns))
	if !ok || err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("shard %q: want i/n, e.g. 1/3", s)
	}
	sh := Shard{Index: i, Count: n}
	return sh, sh.validate()
}

func (s Shard) validate() error {
	if s == (Shard{}) {
		return nil
	}
	if s.Count < 1 || s.Index < 1 || s.Index > s.Count {
		return fmt.Errorf("shard %d/%d: want 1 ≤ i ≤ n", s.Index, s.Count)
	}
	return nil
}

func (s Shard) String() string {
	if s == (Shard{}) {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// Options select and shape the matrix. The zero value selects the nightly
// tier on every arch with the default runners and budgets.
type Options struct {
	// Tier: catalog.TierNightly (default), catalog.TierExperimental or TierAll.
	Tier string
	// Arches restricts the arches (empty: all that have an image).
	Arches []string
	// Shard keeps one part of the matrix.
	Shard Shard
	// Runners maps arch → runner label (nil: DefaultRunners).
	Runners map[string]string
	// Budgets gives estimate and timeout (nil Engines: DefaultBudgets).
	Budgets *Budgets
}

// ErrNoRunner is returned when an arch of the matrix has no runner label.
var ErrNoRunner = errors.New("no runner for arch")

// Build returns the matrix of the templates selected by opts. Templates are
// the catalog's resolved templates; an arch is included when the template
// has at least one image for it.
func Build(templates []*catalog.Template, opts Options) (*Matrix, error) {
	tier := opts.Tier
	if tier == "" {
		tier = catalog.TierNightly
	}
	switch tier {
	case catalog.TierNightly, catalog.TierExperimental, TierAll:
	default:
		return nil, fmt.Errorf("tier %q: want %s, %s or %s", tier, catalog.TierNightly, catalog.TierExperimental, TierAll)
	}
	if err := opts.Shard.validate(); err != nil {
		return nil, err
	}
	runners := opts.Runners
	if runners == nil {
		runners = DefaultRunners()
	}
	budgets := DefaultBudgets()
	if opts.Budgets != nil {
		budgets = *opts.Budgets
	}
	for _, a := range opts.Arches {
		if _, ok := runners[a]; !ok {
			return nil, fmt.Errorf("arch %q: %w (known: %s)", a, ErrNoRunner, strings.Join(sortedKeys(runners), ", "))
		}
	}

	sorted := slices.Clone(templates)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })

	m := &Matrix{Include: []Entry{}}
	var errs []error
	for _, t := range sorted {
		if t == nil || (t.Kind != "" && t.Kind != catalog.KindTemplate) {
			continue
		}
		if tier != TierAll && tierOf(t) != tier {
			continue
		}
		for _, arch := range archesOf(t) {
			if len(opts.Arches) > 0 && !slices.Contains(opts.Arches, arch) {
				continue
			}
			runner, ok := runners[arch]
			if !ok {
				errs = append(errs, fmt.Errorf("template %s: arch %q: %w; pass --runner %s=LABEL", t.Name, arch, ErrNoRunner, arch))
				continue
			}
			engine := ""
			if t.Engine != nil {
				engine = t.Engine.Name
			}
			b := budgets.For(engine, tierOf(t), arch)
			m.Include = append(m.Include, Entry{
				Template:      t.Name,
				Arch:          arch,
				Runner:        runner,
				Timeout:       b.Timeout,
				Offline:       offline(t, arch),
				AllowUnpinned: len(t.UnpinnedDownloads()) > 0,
				CacheKey:      CacheKey(t, arch),
				Estimate:      b.Estimate,
			})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if opts.Shard != (Shard{}) {
		m.Include = Split(m.Include, opts.Shard.Count)[opts.Shard.Index-1]
	}
	return m, nil
}

// Split distributes entries over n shards, balancing the estimated minutes:
// longest first, each to the least loaded shard (ties: the lower shard).
// It is deterministic; each shard keeps the matrix order.
func Split(entries []Entry, n int) [][]Entry {
	if n < 1 {
		n = 1
	}
	idx := make([]int, len(entries))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		ea, eb := entries[idx[a]], entries[idx[b]]
		if ea.Estimate != eb.Estimate {
			return ea.Estimate > eb.Estimate
		}
		return idx[a] < idx[b]
	})
	load := make([]int, n)
	owner := make([]int, len(entries))
	for _, i := range idx {
		best := 0
		for s := 1; s < n; s++ {
			if load[s] < load[best] {
				best = s
			}
		}
		owner[i] = best
		load[best] += max(entries[i].Estimate, 1)
	}
	shards := make([][]Entry, n)
	for s := range shards {
		shards[s] = []Entry{}
	}
	for i, e := range entries {
		shards[owner[i]] = append(shards[owner[i]], e)
	}
	return shards
}

// Minutes is the sum of the estimates of the entries.
func Minutes(entries []Entry) int {
	total := 0
	for _, e := range entries {
		total += e.Estimate
	}
	return total
}

// WriteJSON writes the matrix as one line of JSON (for $GITHUB_OUTPUT), or
// indented when indent is true, followed by a newline.
func (m *Matrix) WriteJSON(w io.Writer, indent bool) error {
	var (
		b   []byte
		err error
	)
	if indent {
		b, err = json.MarshalIndent(m, "", "  ")
	} else {
		b, err = json.Marshal(m)
	}
	if err != nil {
		return fmt.Errorf("encoding matrix: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteGitHubOutput appends `matrix=<json>` and `count=<n>` to a
// $GITHUB_OUTPUT file's content.
func (m *Matrix) WriteGitHubOutput(w io.Writer) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding matrix: %w", err)
	}
	_, err = fmt.Fprintf(w, "matrix=%s\ncount=%d\n", b, len(m.Include))
	return err
}

// tierOf is the template's tier with the catalog's default.
func tierOf(t *catalog.Template) string {
	if t.Tier == "" {
		return catalog.TierExperimental
	}
	return t.Tier
}

// archesOf lists the arches the template has an image for, x86_64 first.
func archesOf(t *catalog.Template) []string {
	seen := map[string]bool{}
	for _, im := range t.Images {
		seen[im.Arch] = true
	}
	var out []string
	for _, a := range archOrder {
		if seen[a] {
			out = append(out, a)
			delete(seen, a)
		}
	}
	return append(out, sortedKeys(seen)...)
}

// offline reports whether the template verifies with no network on arch.
func offline(t *catalog.Template, arch string) bool {
	if t.Engine != nil && len(t.Engine.Requires) > 0 {
		return false
	}
	for _, im := range t.ImagesFor(arch) {
		if im.Build != nil {
			return true
		}
	}
	return false
}

// CacheKey is the actions/cache key of the images a template uses on arch:
// "images-<arch>-<hash>", the hash covering every image entry for the arch
// (URL and digest, or build recipe and the packages it bakes in).
func CacheKey(t *catalog.Template, arch string) string {
	h := sha256.New()
	fmt.Fprintf(h, "arch %s\n", arch)
	for _, im := range t.ImagesFor(arch) {
		switch {
		case im.Build != nil:
			recipe, _ := json.Marshal(im.Build) // plain struct: cannot fail
			fmt.Fprintf(h, "build %s\n", recipe)
			if im.Build.Bake {
				fmt.Fprintf(h, "bake %s\n", strings.Join(bakedPackages(t, arch), " "))
			}
		default:
			fmt.Fprintf(h, "url %s %s\n", im.Location, im.Digest)
		}
	}
	return "images-" + arch + "-" + hex.EncodeToString(h.Sum(nil))[:20]
}

// bakedPackages are the packages of the template's `packages` steps that
// apply on arch, sorted.
func bakedPackages(t *catalog.Template, arch string) []string {
	var pkgs []string
	for _, s := range t.StepsFor(arch) {
		if s.Mode == catalog.ModePackages {
			pkgs = append(pkgs, s.Packages...)
		}
	}
	sort.Strings(pkgs)
	return slices.Compact(pkgs)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
