package qemu

import (
	"errors"
	"fmt"
	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/intervals"
	"slices"
)

// Architectures, named as QEMU names them.
const (
	ArchX8664   = "x86_64"
	ArchAarch64 = "aarch64"
)

// Accelerators. AccelAuto is resolved by Launch; Cmdline and Start take
// only kvm or tcg.
// kvm and tcg are the names framework/intervals scales by (one definition).
const (
	AccelAuto = "auto"
	AccelKVM  = intervals.AccelKVM
	AccelTCG  = intervals.AccelTCG
)

// EnvAccel is read by framework/config (GUESTCATALOG_ACCEL).
const EnvAccel = "GUESTCATALOG_ACCEL"

// Firmware of a disk boot.
const (
	FirmwareBIOS = "bios"
	FirmwareUEFI = "uefi"
)

// UnixPathMax is the size of sun_path: a socket path must be shorter.
const UnixPathMax = 108

// Drive is a disk image attached as a virtio-blk device.
type Drive struct {
	Path string
	// Format: qcow2 (default) or raw.
	Format string
	// ReadOnly attaches the image read-only (and makes QEMU's savevm skip
	// it: a writable raw image blocks savevm).
	ReadOnly bool
	// Cache is QEMU's cache mode; default "unsafe" for writable drives
	// (guest flushes are ignored; QEMU still flushes on quit and savevm:
	// right for a disposable overlay, and it makes apt/dpkg much faster).
	Cache string
}

// Forward forwards a host port on 127.0.0.1 to a guest port (slirp
// hostfwd).
type Forward struct {
	// Proto is "tcp" (default) or "udp".
	Proto string
	// HostPort on 127.0.0.1. Cmdline needs it set; Start replaces 0 with a
	// free port (and retries once with new ports if QEMU loses the race
	// for one).
	HostPort  int
	GuestPort int
}

// Spec describes one QEMU machine. Cmdline turns it into argv; Start fills
// the paths left empty (QMPSocket, PIDFile, SerialLog, FirmwareVars) from
// its run dir and the ports left 0 with free ones.
type Spec struct {
	// Name labels the guest (-name) and log messages.
	Name string
	// Arch is x86_64 or aarch64; "" is the host's.
	Arch string
	// Accel is kvm or tcg (Launch resolves auto).
	Accel string
	// CPU model; "" picks one per arch and accelerator (see DefaultCPU).
	CPU string
	// CPUs (-smp), default 2. MemoryBytes (-m, rounded up to MiB), default 1 GiB.
	CPUs        int
	MemoryBytes int64

	// Firmware for a disk boot: bios (x86 default) or uefi (aarch64
	// always). Ignored when Kernel is set on aarch64.
	Firmware string
	// FirmwareCode is the UEFI code image; "" picks the distro's
	// (DefaultFirmware). FirmwareVars is the writable per-machine copy of
	// the UEFI variable store (CreateUEFIVars makes one, as qcow2 so that
	// savevm works). Start creates one in the run dir when it is empty;
	// keep your own beside the overlay to reuse snapshots. Its format is
	// qcow2 when the name ends in .qcow2, raw otherwise.
	FirmwareCode string
	FirmwareVars string

	// Direct kernel boot (locally built images): Kernel, Initrd, Append.
	// A serial console argument is added to Append when it names none.
	Kernel, Initrd, Append string

	// Disk is the root disk: a qcow2 overlay (CreateOverlay), never the
	// cached image itself. Required unless Kernel is set or Diskless.
	Disk Drive
	// Seed is the NoCloud cidata image, attached read-only as virtio-blk
	// (cloud-init finds it by label; read-only keeps savevm working).
	Seed string
	// Drives are further disks, after the root disk and the seed.
	Drives []Drive
	// Diskless allows a spec without disk and kernel (firmware probes).
	Diskless bool

	// Forwards are hostfwd rules of the user-mode network.
	Forwards []Forward
	// NoNetwork leaves out the network device.
	NoNetwork bool
	// MACAddress of the virtio-net device; "" is QEMU's default.
	MACAddress string
	// Restrict cuts the user-mode network off from the host and the
	// outside; only Forwards and GuestForwards work (sandbox.go).
	Restrict      bool
	GuestForwards []GuestForward
	// Shares are host directories exported over 9p (sandbox.go).
	Shares []Share

	// SerialLog receives the first serial port ("" : no serial port).
	SerialLog string
	// Debugcon receives x86 firmware debug output (port 0x402: SeaBIOS
	// and OVMF debug messages); "" : none.
	Debugcon string
	// QMPSocket is the QMP unix socket path (shorter than 108 bytes).
	QMPSocket string
	// PIDFile is written by QEMU.
	PIDFile string

	// MemoryFile backs guest RAM with a file (memory-backend-file): with
	// MemoryShared the guest writes into it (a machine that will be saved:
	// SaveState then leaves RAM out of the migration stream, the file holds
	// it); without, the file is mapped copy-on-write (a resumed guest
	// starts from the saved RAM, loaded lazily by page faults, and never
	// writes the file).
	MemoryFile   string
	MemoryShared bool
	// Incoming starts QEMU waiting for a migration stream (-incoming
	// defer): LoadState feeds it the saved device state. The device set,
	// memory size, accelerator and CPU model must be the ones SaveState
	// saved with.
	Incoming bool

	// LoadVM resumes the named snapshot stored in the overlay (savevm).
	// The device set (disks, seed, network, firmware) must be the one the
	// snapshot was saved with, and so must the accelerator and CPU model.
	LoadVM string
	// NoReboot makes a guest reboot (or a panic with panic=-1) end QEMU.
	NoReboot bool
	// Binary overrides qemu-system-<arch>.
	Binary string
	// ExtraArgs are appended to the command line as they are.
	ExtraArgs []string
}

// withDefaults returns a copy with defaults applied (no I/O).
func (s Spec) withDefaults() Spec {
	if s.Arch == "" {
		s.Arch = catalog.HostArch()
	}
	if s.CPUs == 0 {
		s.CPUs = 2
	}
	if s.MemoryBytes == 0 {
		s.MemoryBytes = 1 << 30
	}
	if s.Firmware == "" && s.Arch == ArchAarch64 {
		s.Firmware = FirmwareUEFI
	}
	if s.Firmware == "" {
		s.Firmware = FirmwareBIOS
	}
	if s.Disk.Path != "" && s.Disk.Format == "" {
		s.Disk.Format = "qcow2"
	}
	s.Forwards = slices.Clone(s.Forwards)
	for i := range s.Forwards {
		if s.Forwards[i].Proto == "" {
			s.Forwards[i].Proto = "tcp"
		}
	}
	s.Drives = slices.Clone(s.Drives)
	for i := range s.Drives {
		if s.Drives[i].Format == "" {
			s.Drives[i].Format = "qcow2"
		}
	}
	return s
}

// usesUEFI says whether the spec boots OVMF/AAVMF.
func (s Spec) usesUEFI() bool {
	if s.Arch == ArchAarch64 {
		return s.Kernel == ""
	}
	return s.Firmware == FirmwareUEFI
}

// Validate reports every problem of a spec (after defaults), each naming
// its field.
func (s Spec) Validate() error {
	s = s.withDefaults()
	var errs []error
	add := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	switch s.Arch {
	case ArchX8664, ArchAarch64:
	default:
		add("arch: %q is not supported (want %s or %s)", s.Arch, ArchX8664, ArchAarch64)
	}
	switch s.Accel {
	case AccelKVM, AccelTCG:
	case AccelAuto:
		add("accel: %q must be resolved before building a command line (use Launch)", s.Accel)
	case "":
		add("accel: must be set (%s or %s)", AccelKVM, AccelTCG)
	default:
		add("accel: %q is not supported (want %s or %s)", s.Accel, AccelKVM, AccelTCG)
	}
	if s.CPUs < 1 {
		add("cpus: must be at least 1, got %d", s.CPUs)
	}
	if s.MemoryBytes < 64<<20 {
		add("memoryBytes: must be at least 64 MiB, got %d", s.MemoryBytes)
	}
	switch s.Firmware {
	case FirmwareBIOS:
		if s.Arch == ArchAarch64 {
			add("firmware: bios is x86-only; aarch64 boots uefi")
		}
	case FirmwareUEFI:
	default:
		add("firmware: %q is not supported (want %s or %s)", s.Firmware, FirmwareBIOS, FirmwareUEFI)
	}
	if s.usesUEFI() && s.FirmwareVars == "" {
		add("firmwareVars: must be set for uefi (a per-machine copy of the variable store: CreateUEFIVars)")
	}
	if s.Kernel == "" {
		if s.Initrd != "" {
			add("initrd: set without kernel")
		}
		if s.Append != "" {
			add("append: set without kernel")
		}
	}
	if s.Disk.Path == "" && s.Kernel == "" && !s.Diskless {
		add("disk.path: must be set (a qcow2 overlay of the image; or set kernel for a direct kernel boot)")
	}
	if s.Disk.Path != "" {
		errs = append(errs, validateDrive("disk", s.Disk)...)
	}
	for i, d := range s.Drives {
		if d.Path == "" {
			add("drives[%d].path: must be set", i)
			continue
		}
		errs = append(errs, validateDrive(fmt.Sprintf("drives[%d]", i), d)...)
	}
	if s.NoNetwork && len(s.Forwards) > 0 {
		add("forwards: set with noNetwork")
	}
	seen := map[string]int{}
	for i, f := range s.Forwards {
		if f.Proto != "tcp" && f.Proto != "udp" {
			add("forwards[%d].proto: %q is not supported (want tcp or udp)", i, f.Proto)
		}
		if f.GuestPort < 1 || f.GuestPort > 65535 {
			add("forwards[%d].guestPort: must be 1-65535, got %d", i, f.GuestPort)
		}
		switch {
		case f.HostPort == 0:
			add("forwards[%d].hostPort: must be set (Start picks a free port for 0)", i)
		case f.HostPort < 0 || f.HostPort > 65535:
			add("forwards[%d].hostPort: must be 1-65535, got %d", i, f.HostPort)
		default:
			k := fmt.Sprintf("%s:%d", f.Proto, f.HostPort)
			if j, dup := seen[k]; dup {
				add("forwards[%d].hostPort: %d is already used by forwards[%d]", i, f.HostPort, j)
			}
			seen[k] = i
		}
	}
	errs = append(errs, s.validateSandbox()...)
	if s.QMPSocket == "" {
		add("qmpSocket: must be set")
	} else if n := len(s.QMPSocket); n >= UnixPathMax {
		add("qmpSocket: %q is %d bytes; unix socket paths must be shorter than %d: use a shorter run dir root (%s)", s.QMPSocket, n, UnixPathMax, EnvRunRoot)
	}
	if s.LoadVM != "" && s.Incoming {
		add("incoming: set with loadVM (one way to resume)")
	}
	if s.MemoryShared && s.MemoryFile == "" {
		add("memoryShared: set without memoryFile")
	}
	if s.Debugcon != "" && s.Arch != ArchX8664 {
		add("debugcon: x86-only")
	}
	if len(errs) == 0 {
		return nil
	}
	return errors.Join(errs...)
}

func validateDrive(field string, d Drive) []error {
	var errs []error
	switch d.Format {
	case "qcow2", "raw":
	default:
		errs = append(errs, fmt.Errorf("%s.format: %q is not supported (want qcow2 or raw)", field, d.Format))
	}
	switch d.Cache {
	case "", "none", "writeback", "writethrough", "directsync", "unsafe":
	default:
		errs = append(errs, fmt.Errorf("%s.cache: %q is not a QEMU cache mode", field, d.Cache))
	}
	return errs
}
