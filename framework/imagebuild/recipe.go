package imagebuild

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/guestcatalog/guestcatalog/catalog"
)

// BuilderVersion is part of every cache key. Bump it whenever the builder
// would make a different image from the same recipe (base packages, rootfs
// customizations, mkfs or qcow2 options), so that old cache entries are not
// reused.
const BuilderVersion = "3"

// DefaultMirror is used when a recipe names no mirror.
const DefaultMirror = "http://deb.debian.org/debian"

// KeyLength is the number of hex digits of the recipe hash used as the cache
// key (64 bits: collisions are out of the question for a local cache).
const KeyLength = 16

// ErrForeignArch is returned for a recipe built for another arch than the
// host's when qemu-user cannot run that arch's binaries here (the guest's
// maintainer scripts run through it; see hostcheck.BinfmtReady).
var ErrForeignArch = errors.New("a foreign-arch image build needs qemu-user registered with binfmt_misc")

// ErrInvalidRecipe is wrapped by recipe validation errors.
var ErrInvalidRecipe = errors.New("invalid build recipe")

// basePackages are installed into every image, whatever the recipe says:
// what the framework needs to boot it and reach it (systemd as init, udev,
// dbus, cloud-init with its NoCloud datasource, OpenSSH, networkd's DNS via
// resolved, e2fsprogs for cloud-init's resizefs, the Debian cloud kernel and
// initramfs-tools, which the initrd check relies on).
func basePackages(debArch, kernel string) []string {
	return []string{
		"systemd", "systemd-sysv", "systemd-resolved", "udev", "dbus",
		"cloud-init", "openssh-server", "sudo", "e2fsprogs", "iproute2",
		"netbase", "ca-certificates", "initramfs-tools",
		kernelPackage(debArch, kernel),
	}
}

// kernelPackage is Debian's cloud kernel (virtio drivers, no hardware
// drivers, small initrd), or with flavour generic the generic one, which
// has 9p as modules (the cloud kernel has none: mounts need generic).
func kernelPackage(debArch, flavour string) string {
	if flavour == catalog.KernelGeneric {
		return "linux-image-" + debArch
	}
	return "linux-image-cloud-" + debArch
}

// DebianArch maps a catalog arch (x86_64, aarch64) to Debian's name.
func DebianArch(arch string) (string, error) {
	switch arch {
	case catalog.ArchX8664:
		return "amd64", nil
	case catalog.ArchAarch64:
		return "arm64", nil
	}
	return "", fmt.Errorf("unknown arch %q (want %s or %s)", arch, catalog.ArchX8664, catalog.ArchAarch64)
}

var (
	suiteRE     = regexp.MustCompile(`^[a-z][a-z0-9.-]*$`)
	componentRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
)

// Plan is a normalized recipe for one arch: what the builder will install,
// and the cache key that names the result.
type Plan struct {
	Arch       string   `json:"arch"`    // catalog arch: x86_64, aarch64
	DebArch    string   `json:"debArch"` // Debian arch: amd64, arm64
	Suite      string   `json:"suite"`
	Mirror     string   `json:"mirror"`
	Components []string `json:"components"`
	// Packages is the effective --include list: the builder's base
	// packages, the recipe's, and the extra (baked) ones; sorted, unique.
	Packages []string `json:"packages"`
	// Extra are the extra packages that were baked in (empty unless the
	// recipe says bake).
	Extra []string `json:"extra,omitempty"`
	// Key is the cache key: a hash of BuilderVersion and every field above.
	Key string `json:"key"`
}

// NewPlan validates and normalizes a recipe for arch. extraPackages (the
// template's `packages` steps) are included only when recipe.Bake is set.
// Two recipes that install the same thing (order, duplicates, a default
// spelled out) get the same key; any change of suite, mirror, components,
// packages, arch or builder version gives another.
func NewPlan(recipe catalog.BuildRecipe, extraPackages []string, arch string) (*Plan, error) {
	debArch, err := DebianArch(arch)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRecipe, err)
	}
	var problems []error
	bad := func(format string, a ...any) {
		problems = append(problems, fmt.Errorf(format, a...))
	}
	p := &Plan{Arch: arch, DebArch: debArch, Suite: recipe.Suite}
	if !suiteRE.MatchString(recipe.Suite) {
		bad("suite: %q is not a Debian suite name", recipe.Suite)
	}
	p.Mirror = strings.TrimRight(recipe.Mirror, "/")
	if p.Mirror == "" {
		p.Mirror = DefaultMirror
	}
	if u, err := url.Parse(p.Mirror); err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") || (u.Scheme != "file" && u.Host == "") {
		bad("mirror: %q is not an http(s):// or file:// URL", recipe.Mirror)
	}
	p.Components = uniqueSorted(recipe.Components)
	if len(p.Components) == 0 {
		p.Components = []string{"main"}
	}
	for _, c := range p.Components {
		if !componentRE.MatchString(c) {
			bad("components: %q is not an archive component", c)
		}
	}
	for i, name := range recipe.Packages {
		if !catalog.ValidDebianPackageName(name) {
			bad("packages[%d]: %q is not a Debian package name", i, name)
		}
	}
	if recipe.Bake {
		for i, name := range extraPackages {
			if !catalog.ValidDebianPackageName(name) {
				bad("extra packages[%d]: %q is not a Debian package name", i, name)
			}
		}
		p.Extra = uniqueSorted(extraPackages)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRecipe, errors.Join(problems...))
	}
	switch recipe.Kernel {
	case "", catalog.KernelCloud, catalog.KernelGeneric:
	default:
		return nil, fmt.Errorf("%w: kernel: %q is not a kernel flavour (want cloud or generic)", ErrInvalidRecipe, recipe.Kernel)
	}
	all := append(basePackages(debArch, recipe.Kernel), recipe.Packages...)
	all = append(all, p.Extra...)
	p.Packages = uniqueSorted(all)
	p.Key = p.hash()
	return p, nil
}

// hash is the cache key of a plan; Extra is not part of it on its own (it
// is already in Packages).
func (p *Plan) hash() string { return p.hashWith(BuilderVersion) }

func (p *Plan) hashWith(builderVersion string) string {
	b, err := json.Marshal(struct {
		Builder    string   `json:"builder"`
		Arch       string   `json:"arch"`
		Suite      string   `json:"suite"`
		Mirror     string   `json:"mirror"`
		Components []string `json:"components"`
		Packages   []string `json:"packages"`
	}{builderVersion, p.Arch, p.Suite, p.Mirror, p.Components, p.Packages})
	if err != nil {
		panic(err) // strings only: cannot fail
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:KeyLength]
}

// Source names the plan in reports: "build:trixie".
func (p *Plan) Source() string { return "build:" + p.Suite }

func uniqueSorted(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Console is the serial console device of the arch's QEMU machine.
func Console(arch string) string {
	if arch == catalog.ArchAarch64 {
		return "ttyAMA0"
	}
	return "ttyS0"
}

// KernelAppend is the kernel command line for direct kernel boot of a built
// image:
//   - root=LABEL=root rw: the filesystem has no partition table; the initrd
//     finds it by label, and mounting it read-write at once makes
//     systemd-remount-fs and the root fsck no-ops.
//   - console=<serial>,115200: the framework reads boot progress from the
//     serial console, so kernel and systemd messages stay on (no quiet).
//   - net.ifnames=0: the NIC is eth0 from the start (no udev rename race;
//     cloud-init's network-config matches e*).
//   - panic=-1: a kernel panic (root not found) reboots at once, which
//     QEMU's -no-reboot turns into an exit the framework sees immediately
//     instead of a guest hanging until a timeout.
func KernelAppend(arch string) string {
	return fmt.Sprintf("root=LABEL=%s rw console=%s,115200 net.ifnames=0 panic=-1", FSLabel, Console(arch))
}

// FSLabel is the label of the root filesystem.
const FSLabel = "root"
