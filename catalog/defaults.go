package catalog

// Defaults applied by [Default] to a composed template.
const (
	DefaultCPUs         = 2
	DefaultMemory       = "2GiB"
	DefaultDisk         = "10GiB"
	DefaultUser         = "guest"
	DefaultShell        = "/bin/bash"
	DefaultAlpineShell  = "/bin/sh"
	DefaultMirror       = "http://deb.debian.org/debian"
	DefaultProbeTimeout = "probe" // a named interval of the framework config
	DefaultPermissions  = "0644"
)

// versionCommands print an engine's installed version in the guest; they
// are the default of engine.versionCommand.
var versionCommands = map[string]string{
	"containerd": "containerd --version",
	"docker":     "docker version --format '{{.Server.Version}}'",
	"podman":     "podman version --format '{{.Client.Version}}'",
	"apptainer":  "apptainer --version",
	"k3s":        "k3s --version | head -1",
	"k0s":        "k0s version",
	"rke2":       "rke2 --version | head -1",
	"k8s":        "kubeadm version -o short",
	"usernetes":  "nerdctl --version",
}

// Default fills what a composed template leaves unset: 2 CPUs, 2GiB of
// memory, a 10GiB disk; user guest with /bin/bash (/bin/sh on Alpine) and
// sudo; tier experimental; init systemd (openrc on Alpine); image firmware
// bios (uefi on aarch64, which has no BIOS); build mirror deb.debian.org
// and component main; data step permissions 0644; probe timeout "probe";
// checks as user, expecting exit code 0; port forward proto tcp; the engine's version command. Default never overrides a value that is set,
// and applying it twice changes nothing.
func Default(t *Template) {
	alpine := t.Distro != nil && (t.Distro.Family == FamilyAlpine || t.Distro.Name == "alpine")
	if t.Kind == KindTemplate && t.Tier == "" {
		t.Tier = TierExperimental
	}
	if t.Distro != nil && t.Distro.Init == "" {
		t.Distro.Init = "systemd"
		if alpine {
			t.Distro.Init = "openrc"
		}
	}
	if t.Engine != nil && t.Engine.VersionCommand == "" {
		t.Engine.VersionCommand = versionCommands[t.Engine.Name]
	}
	for i := range t.Images {
		im := &t.Images[i]
		if im.Firmware == "" {
			im.Firmware = FirmwareBIOS
			if im.Arch == ArchAarch64 {
				im.Firmware = FirmwareUEFI // QEMU's aarch64 virt machine has no BIOS
			}
		}
		if b := im.Build; b != nil {
			if b.Mirror == "" {
				b.Mirror = DefaultMirror
			}
			if len(b.Components) == 0 {
				b.Components = []string{"main"}
			}
		}
	}
	if t.CPUs == nil {
		n := DefaultCPUs
		t.CPUs = &n
	}
	if t.Memory == "" {
		t.Memory = DefaultMemory
	}
	if t.Disk == "" {
		t.Disk = DefaultDisk
	}
	if t.User == nil {
		t.User = &User{}
	}
	if t.User.Name == "" {
		t.User.Name = DefaultUser
	}
	if t.User.Shell == "" {
		t.User.Shell = DefaultShell
		if alpine {
			t.User.Shell = DefaultAlpineShell
		}
	}
	if t.User.Sudo == nil {
		yes := true
		t.User.Sudo = &yes
	}
	for i := range t.Provision {
		if s := &t.Provision[i]; s.Mode == ModeData && s.Permissions == "" {
			s.Permissions = DefaultPermissions
		}
	}
	for i := range t.Probes {
		if t.Probes[i].Timeout == "" {
			t.Probes[i].Timeout = DefaultProbeTimeout
		}
	}
	for i := range t.Checks {
		ck := &t.Checks[i]
		if ck.As == "" {
			ck.As = CheckAsUser
		}
		if ck.ExitCode == nil {
			n := 0
			ck.ExitCode = &n
		}
	}
	for i := range t.PortForwards {
		if t.PortForwards[i].Proto == "" {
			t.PortForwards[i].Proto = "tcp"
		}
	}
}
