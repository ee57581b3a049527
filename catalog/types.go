package catalog

// APIVersion is the only template schema version this build understands.
const APIVersion = "guestcatalog.dev/v1alpha1"

// Document kinds.
const (
	// KindTemplate is a complete, listable template (`<distro>-<engine>`).
	KindTemplate = "Template"
	// KindFragment is a reusable part (an image or an engine) that templates
	// compose with `base:`. Fragments are never listed nor verified alone.
	KindFragment = "Fragment"
)

// Tiers say how much a template is trusted; they drive the nightly matrix.
const (
	TierNightly      = "nightly"      // booted and verified every night
	TierExperimental = "experimental" // shipped, verified on demand only
)

// Architectures, named as QEMU and the upstream catalogs name them.
const (
	ArchX8664   = "x86_64"
	ArchAarch64 = "aarch64"
)

// Distro families decide the package manager a step is written for.
const (
	FamilyDebian = "debian" // apt: debian, ubuntu
	FamilyRHEL   = "rhel"   // dnf: fedora, rocky, almalinux
	FamilyAlpine = "alpine" // apk
	FamilySUSE   = "suse"   // zypper
	FamilyArch   = "arch"   // pacman
)

// Provisioning step modes.
const (
	ModeSystem   = "system"   // a script run once as root (cloud-init runcmd, in order)
	ModeUser     = "user"     // a script run once as the template's user, after the system steps before it
	ModeBoot     = "boot"     // a script run as root early on every boot (cloud-init bootcmd)
	ModeData     = "data"     // a file written before any script runs (cloud-init write_files)
	ModePackages = "packages" // distro packages installed by cloud-init's package module
)

// Firmware for disk images booted by QEMU.
const (
	FirmwareBIOS = "bios"
	FirmwareUEFI = "uefi"
)

// Template is one YAML document: a template or a fragment. Pointer fields
// distinguish "unset" (inherit from a base, then default) from a zero value.
type Template struct {
	APIVersion string `yaml:"apiVersion" json:"apiVersion" jsonschema:"required,enum=guestcatalog.dev/v1alpha1"`
	Kind       string `yaml:"kind" json:"kind" jsonschema:"required,enum=Template,enum=Fragment"`
	// Name of the template, `<distro>-<release>-<engine>`; for fragments the
	// path that `base:` uses (`images/debian-13`, `engines/docker`).
	Name string `yaml:"name" json:"name" jsonschema:"required,pattern=^[a-z0-9][a-z0-9._/-]*$"`
	// Aliases are other names for a template (`debian-docker`). Not inherited.
	Aliases     []string `yaml:"aliases,omitempty" json:"aliases,omitempty"`
	Description string   `yaml:"description,omitempty" json:"description,omitempty"`
	// Tier: nightly or experimental. Not inherited; defaults to experimental.
	Tier string `yaml:"tier,omitempty" json:"tier,omitempty" jsonschema:"enum=nightly,enum=experimental"`
	// Base lists fragments (or templates) composed under this one, in order.
	Base []string `yaml:"base,omitempty" json:"base,omitempty"`

	Distro *Distro `yaml:"distro,omitempty" json:"distro,omitempty"`
	Engine *Engine `yaml:"engine,omitempty" json:"engine,omitempty"`
	// Images are alternatives, tried in order for the host's arch.
	Images []Image `yaml:"images,omitempty" json:"images,omitempty"`

	CPUs   *int   `yaml:"cpus,omitempty" json:"cpus,omitempty" jsonschema:"minimum=1"`
	Memory string `yaml:"memory,omitempty" json:"memory,omitempty" jsonschema:"pattern=^[0-9]+(\\.[0-9]+)?\\s*(B|KiB|MiB|GiB|TiB|K|M|G|T)?$"`
	Disk   string `yaml:"disk,omitempty" json:"disk,omitempty" jsonschema:"pattern=^[0-9]+(\\.[0-9]+)?\\s*(B|KiB|MiB|GiB|TiB|K|M|G|T)?$"`

	User *User `yaml:"user,omitempty" json:"user,omitempty"`
	// Env is exported to every provisioning script and probe.
	Env map[string]string `yaml:"env,omitempty" json:"env,omitempty"`
	// Params are named values a user may override (`--set name=value`).
	// Scripts read them as environment variables PARAM_<name>; a value is
	// data and is never evaluated by a shell.
	Params map[string]string `yaml:"params,omitempty" json:"params,omitempty"`

	// Artifacts are vendor files fetched and verified on the host and
	// handed to the guest on a read-only drive (artifacts.go).
	Artifacts []Artifact `yaml:"artifacts,omitempty" json:"artifacts,omitempty"`
	Provision []Step     `yaml:"provision,omitempty" json:"provision,omitempty"`
	Probes    []Probe    `yaml:"probes,omitempty" json:"probes,omitempty"`
	// Checks are declared tests of the provisioned guest, run after the
	// engine's own specs and reported by name.
	Checks       []Check       `yaml:"checks,omitempty" json:"checks,omitempty"`
	PortForwards []PortForward `yaml:"portForwards,omitempty" json:"portForwards,omitempty"`
	Mounts       []Mount       `yaml:"mounts,omitempty" json:"mounts,omitempty"`
	// Network is the guest's network policy (sandbox.go); unset: egress nat.
	Network *Network `yaml:"network,omitempty" json:"network,omitempty"`
	// Isolation "strict" makes the isolation suite fail the template when a
	// property does not hold; unset, the profile is only reported.
	Isolation string `yaml:"isolation,omitempty" json:"isolation,omitempty" jsonschema:"enum=strict"`

	// Source is where the document was read from (not part of the YAML).
	Source string `yaml:"-" json:"-"`
}

// Distro names the operating system in the image.
type Distro struct {
	Name    string `yaml:"name" json:"name" jsonschema:"required,enum=ubuntu,enum=debian,enum=fedora,enum=alpine,enum=rocky,enum=almalinux,enum=opensuse,enum=archlinux"`
	Release string `yaml:"release,omitempty" json:"release,omitempty"`
	Family  string `yaml:"family" json:"family" jsonschema:"required,enum=debian,enum=rhel,enum=alpine,enum=suse,enum=arch"`
	// Init is the init system: systemd (default) or openrc.
	Init string `yaml:"init,omitempty" json:"init,omitempty" jsonschema:"enum=systemd,enum=openrc"`
}

// Engine names the container engine a template provides.
type Engine struct {
	// Name is any lowercase name: the shipped engines (containerd, docker,
	// podman, k3s, k0s, rke2, apptainer, k8s, usernetes) come with Go specs
	// and a default versionCommand; another engine's checks come from the
	// template (checks:).
	Name string `yaml:"name" json:"name" jsonschema:"required,pattern=^[a-z][a-z0-9-]*$"`
	// Version the provisioning installs: a vendor release pinned by the
	// fragment, or the distro package version the template expects.
	Version string `yaml:"version,omitempty" json:"version,omitempty"`
	// VersionCommand prints the installed version in the guest; specs record it.
	VersionCommand string `yaml:"versionCommand,omitempty" json:"versionCommand,omitempty"`
	// Requires names what provisioning needs that may be unavailable
	// (`internet`): a run without it reports SKIPPED with this reason.
	Requires []Requirement `yaml:"requires,omitempty" json:"requires,omitempty"`
	// Unpinned lists what the guest downloads that the catalog does not
	// pin (no digest, no signed distro repository): an installer script, a
	// git clone, container images pulled by tag. verify, up and run skip
	// such a template unless --allow-unpinned (GUESTCATALOG_ALLOW_UNPINNED)
	// is given; report.json then lists each item.
	Unpinned []Unpinned `yaml:"unpinned,omitempty" json:"unpinned,omitempty" jsonschema:"maxItems=32"`
}

// Unpinned is one download the guest makes without a pin.
type Unpinned struct {
	// What is downloaded: a URL, a git repository at a tag, an image
	// reference (registry.k8s.io/kube-apiserver:v1.35.0).
	What string `yaml:"what" json:"what" jsonschema:"required,minLength=1,maxLength=512"`
	// Reason says who downloads it and why it cannot be pinned yet.
	Reason string `yaml:"reason" json:"reason" jsonschema:"required,minLength=1,maxLength=512"`
}

// Requirement is something the provisioning needs from outside the guest.
type Requirement struct {
	// What: "url" (must answer from the guest's network) or "internet".
	What string `yaml:"what" json:"what" jsonschema:"required,enum=url,enum=internet"`
	URL  string `yaml:"url,omitempty" json:"url,omitempty"`
	// Reason is shown in `SKIPPED: <reason>` when the requirement is not met.
	Reason string `yaml:"reason" json:"reason" jsonschema:"required"`
}

// Image is one way to obtain the guest disk for one arch: a URL (upstream
// cloud image) or a local build recipe, never both.
type Image struct {
	Arch     string `yaml:"arch" json:"arch" jsonschema:"required,enum=x86_64,enum=aarch64"`
	Location string `yaml:"location,omitempty" json:"location,omitempty"`
	// Digest is "sha256:<hex>" or "sha512:<hex>" of the file at Location.
	Digest string `yaml:"digest,omitempty" json:"digest,omitempty" jsonschema:"pattern=^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$"`
	// NoDigest must explain why a Location has no digest (upstream publishes
	// none, or a rolling "latest" fallback). Validate warns about it.
	NoDigest string `yaml:"noDigest,omitempty" json:"noDigest,omitempty"`
	// Firmware the image boots with (bios or uefi); default bios.
	Firmware string `yaml:"firmware,omitempty" json:"firmware,omitempty" jsonschema:"enum=bios,enum=uefi"`
	// Build is a local recipe: the image is built from Debian's archive.
	Build *BuildRecipe `yaml:"build,omitempty" json:"build,omitempty"`
}

// BuildRecipe describes a guest image built locally from Debian packages
// (mmdebstrap → mkfs.ext4 -d → qcow2, kernel and initrd beside it).
type BuildRecipe struct {
	// Suite is the Debian release: trixie, bookworm.
	Suite string `yaml:"suite" json:"suite" jsonschema:"required"`
	// Mirror defaults to http://deb.debian.org/debian.
	Mirror     string   `yaml:"mirror,omitempty" json:"mirror,omitempty"`
	Components []string `yaml:"components,omitempty" json:"components,omitempty"`
	// Packages installed into the image besides the builder's own minimum.
	Packages []string `yaml:"packages,omitempty" json:"packages,omitempty"`
	// Kernel is the kernel flavour: cloud (default; no 9p) or generic
	// (linux-image-<arch>, 9p as modules: templates with mounts need it).
	Kernel string `yaml:"kernel,omitempty" json:"kernel,omitempty" jsonschema:"enum=cloud,enum=generic"`
	// Bake adds the template's `packages` steps to the image, so that the
	// guest installs nothing at provisioning time and needs no network.
	Bake bool `yaml:"bake,omitempty" json:"bake,omitempty"`
}

// User is the account cloud-init creates and the framework logs in as.
type User struct {
	Name  string `yaml:"name,omitempty" json:"name,omitempty" jsonschema:"pattern=^[a-z_][a-z0-9_-]*$"`
	Shell string `yaml:"shell,omitempty" json:"shell,omitempty"`
	Sudo  *bool  `yaml:"sudo,omitempty" json:"sudo,omitempty"`
	// Groups the user joins in addition to its own (docker, ...).
	Groups []string `yaml:"groups,omitempty" json:"groups,omitempty"`
}

// Step is one provisioning step. Exactly one of Script (system, user, boot),
// Content (data) or Packages (packages) is set, according to Mode.
type Step struct {
	Mode        string `yaml:"mode" json:"mode" jsonschema:"required,enum=system,enum=user,enum=boot,enum=data,enum=packages"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// When restricts the step to some distros or families.
	When     *When    `yaml:"when,omitempty" json:"when,omitempty"`
	Script   string   `yaml:"script,omitempty" json:"script,omitempty"`
	Packages []string `yaml:"packages,omitempty" json:"packages,omitempty"`
	// Data steps: a file written before the scripts run.
	Path        string `yaml:"path,omitempty" json:"path,omitempty"`
	Content     string `yaml:"content,omitempty" json:"content,omitempty"`
	Permissions string `yaml:"permissions,omitempty" json:"permissions,omitempty" jsonschema:"pattern=^0[0-7]{3}$"`
	Owner       string `yaml:"owner,omitempty" json:"owner,omitempty"`
}

// When restricts a step or probe; an empty list matches everything.
type When struct {
	Families []string `yaml:"families,omitempty" json:"families,omitempty"`
	Distros  []string `yaml:"distros,omitempty" json:"distros,omitempty"`
	Arches   []string `yaml:"arches,omitempty" json:"arches,omitempty"`
}

// Probe is a readiness check run in the guest after provisioning: the
// script must exit 0 within Timeout; with Eventually, it is run again
// until it does, for at most Eventually.
type Probe struct {
	Description string `yaml:"description" json:"description" jsonschema:"required"`
	When        *When  `yaml:"when,omitempty" json:"when,omitempty"`
	Script      string `yaml:"script" json:"script" jsonschema:"required"`
	// Hint is shown when the probe fails.
	Hint string `yaml:"hint,omitempty" json:"hint,omitempty"`
	// Timeout bounds one run of the script: a named interval (see framework
	// config) or a duration; default "probe".
	Timeout string `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Eventually, when set, retries the script until it exits 0, for at most
	// this named interval or duration (either scaled by accelerator, unlike
	// a duration in Timeout).
	Eventually string `yaml:"eventually,omitempty" json:"eventually,omitempty"`
}

// PortForward forwards a host port on 127.0.0.1 to a guest port.
type PortForward struct {
	GuestPort int    `yaml:"guestPort" json:"guestPort" jsonschema:"required,minimum=1,maximum=65535"`
	HostPort  int    `yaml:"hostPort,omitempty" json:"hostPort,omitempty" jsonschema:"minimum=0,maximum=65535"`
	Proto     string `yaml:"proto,omitempty" json:"proto,omitempty" jsonschema:"enum=tcp,enum=udp"`
}

// Mount shares a host directory with the guest over 9p (see sandbox.go).
// A mount that is not writable is read-only on the host side (QEMU refuses
// every write), not only by a guest mount option.
type Mount struct {
	// Location is the host directory: absolute, or ~/... (the caller's home).
	Location string `yaml:"location" json:"location" jsonschema:"required"`
	// MountPoint is the guest path; default the location (with ~ → /home/<user>).
	MountPoint string `yaml:"mountPoint,omitempty" json:"mountPoint,omitempty"`
	Writable   bool   `yaml:"writable,omitempty" json:"writable,omitempty"`
}
