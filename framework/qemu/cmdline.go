package qemu

import (
	"fmt"
	"strconv"
	"strings"
)

// Default UEFI firmware of Debian's ovmf and qemu-efi-aarch64 packages.
const (
	OVMFCode   = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	OVMFVars   = "/usr/share/OVMF/OVMF_VARS_4M.fd"
	AAVMFCode  = "/usr/share/AAVMF/AAVMF_CODE.fd"
	AAVMFVars  = "/usr/share/AAVMF/AAVMF_VARS.fd"
	SeaBIOSBin = "/usr/share/seabios/bios-256k.bin"
)

// DefaultFirmware returns the UEFI code and variable-store template for
// an arch ("" when the arch has none).
func DefaultFirmware(arch string) (code, vars string) {
	switch arch {
	case ArchX8664:
		return OVMFCode, OVMFVars
	case ArchAarch64:
		return AAVMFCode, AAVMFVars
	}
	return "", ""
}

// Binary returns the QEMU system emulator for an arch.
func Binary(arch string) string { return "qemu-system-" + arch }

// DefaultCPU is the CPU model for an arch and accelerator:
//   - KVM: host (the guest sees the host CPU; fastest).
//   - TCG x86_64: max, every feature TCG emulates (x86-64-v2 and v3, which
//     RHEL 9 and 10 family guests require; qemu64 lacks SSE4.2 and POPCNT).
//     Measured here booting a Debian 6.1 cloud kernel and a busybox
//     userspace under TCG: max is not slower than qemu64 or Nehalem.
//   - TCG aarch64: max with pauth-impdef=on: the architected pointer
//     authentication algorithm (QARMA5) is very slow to emulate; the
//     implementation-defined one is what QEMU recommends for speed.
func DefaultCPU(arch, accel string) string {
	if accel == AccelKVM {
		return "host"
	}
	if arch == ArchAarch64 {
		return "max,pauth-impdef=on"
	}
	return "max"
}

// SerialConsole is the kernel console argument for an arch's first serial
// port.
func SerialConsole(arch string) string {
	if arch == ArchAarch64 {
		return "console=ttyAMA0"
	}
	return "console=ttyS0,115200"
}

// Cmdline returns the QEMU argv (binary first) for a spec. It does no I/O:
// paths are used as they are and ports must be set. Every problem of the
// spec is reported at once (see Spec.Validate).
func Cmdline(spec Spec) ([]string, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("invalid qemu spec: %w", err)
	}
	s := spec.withDefaults()
	bin := s.Binary
	if bin == "" {
		bin = Binary(s.Arch)
	}
	a := []string{bin, "-nodefaults", "-no-user-config", "-display", "none"}
	if s.Name != "" {
		a = append(a, "-name", "guest="+qopt(s.Name))
	}
	accel := s.Accel
	if accel == AccelTCG {
		accel = "tcg,thread=multi"
	}
	machine := "q35"
	if s.Arch == ArchAarch64 {
		machine = "virt,gic-version=max"
	}
	memMiB := strconv.FormatInt((s.MemoryBytes+(1<<20)-1)>>20, 10)
	var memObj []string
	if s.MemoryFile != "" {
		machine += ",memory-backend=" + MemoryBackendID
		share := "off"
		if s.MemoryShared {
			share = "on"
		}
		memObj = []string{"-object", "memory-backend-file,id=" + MemoryBackendID + ",size=" + memMiB + "M,mem-path=" + qopt(s.MemoryFile) + ",share=" + share}
	}
	cpu := s.CPU
	if cpu == "" {
		cpu = DefaultCPU(s.Arch, s.Accel)
	}
	a = append(a,
		"-accel", accel,
		"-machine", machine,
		"-cpu", cpu,
		"-smp", strconv.Itoa(s.CPUs),
		"-m", memMiB,
	)
	a = append(a, memObj...)

	if s.usesUEFI() {
		code := s.FirmwareCode
		if code == "" {
			code, _ = DefaultFirmware(s.Arch)
		}
		a = append(a,
			"-drive", "if=pflash,unit=0,format=raw,readonly=on,file="+qopt(code),
			"-drive", "if=pflash,unit=1,format="+imageFormat(s.FirmwareVars)+",file="+qopt(s.FirmwareVars),
		)
	}
	if s.Kernel != "" {
		a = append(a, "-kernel", s.Kernel)
		if s.Initrd != "" {
			a = append(a, "-initrd", s.Initrd)
		}
		app := s.Append
		if !strings.Contains(app, "console=") {
			app = strings.TrimSpace(app + " " + SerialConsole(s.Arch))
		}
		a = append(a, "-append", app)
	}

	n := 0
	addDrive := func(d Drive, boot bool) {
		id := fmt.Sprintf("drive%d", n)
		n++
		opts := []string{"if=none", "id=" + id, "file=" + qopt(d.Path), "format=" + d.Format}
		if d.ReadOnly {
			opts = append(opts, "readonly=on")
		} else {
			cache := d.Cache
			if cache == "" {
				cache = "unsafe"
			}
			opts = append(opts, "cache="+cache, "discard=unmap")
		}
		dev := "virtio-blk-pci,drive=" + id
		if boot {
			dev += ",bootindex=0"
		}
		a = append(a, "-drive", strings.Join(opts, ","), "-device", dev)
	}
	if s.Disk.Path != "" {
		// With -kernel, QEMU's linuxboot option ROM takes boot index 0.
		addDrive(s.Disk, s.Kernel == "")
	}
	if s.Seed != "" {
		addDrive(Drive{Path: s.Seed, Format: "raw", ReadOnly: true}, false)
	}
	for _, d := range s.Drives {
		addDrive(d, false)
	}

	if !s.NoNetwork {
		netdev := "user,id=net0"
		for _, f := range s.Forwards {
			netdev += fmt.Sprintf(",hostfwd=%s:127.0.0.1:%d-:%d", f.Proto, f.HostPort, f.GuestPort)
		}
		netdev = sandboxNetdev(netdev, s)
		dev := "virtio-net-pci,netdev=net0"
		if s.MACAddress != "" {
			dev += ",mac=" + s.MACAddress
		}
		a = append(a, "-netdev", netdev, "-device", dev)
	}
	a = append(a, sandboxArgs(s)...)
	a = append(a, "-device", "virtio-rng-pci")
	if s.Arch == ArchX8664 {
		// A VM generation ID, new on every QEMU start (guid=auto, the
		// GUID is not part of the migration state): a guest resumed from
		// a snapshot sees it change and reseeds its RNG (Linux
		// CONFIG_VMGENID), so resumes never share random state. QEMU 7.2
		// offers the device on x86 only (ACPI); aarch64 virt has none.
		a = append(a, "-device", "vmgenid,guid=auto")
	}

	if s.SerialLog != "" {
		a = append(a, "-chardev", "file,id=serial0,path="+qopt(s.SerialLog), "-serial", "chardev:serial0")
	}
	if s.Debugcon != "" {
		a = append(a, "-chardev", "file,id=debugcon0,path="+qopt(s.Debugcon),
			"-device", "isa-debugcon,iobase=0x402,chardev=debugcon0")
	}
	a = append(a,
		"-chardev", "socket,id=qmp0,path="+qopt(s.QMPSocket)+",server=on,wait=off",
		"-mon", "chardev=qmp0,mode=control",
	)
	if s.PIDFile != "" {
		a = append(a, "-pidfile", s.PIDFile)
	}
	if s.NoReboot {
		a = append(a, "-no-reboot")
	}
	if s.LoadVM != "" {
		a = append(a, "-loadvm", s.LoadVM)
	}
	if s.Incoming {
		a = append(a, "-incoming", "defer")
	}
	a = append(a, s.ExtraArgs...)
	return a, nil
}

// MemoryBackendID names the RAM backend of a spec with MemoryFile: the
// migration stream names RAM blocks by it, so saver and resumer agree.
const MemoryBackendID = "pc.ram"

// qopt escapes a value for QEMU's option syntax (a comma is doubled).
func qopt(v string) string { return strings.ReplaceAll(v, ",", ",,") }

// imageFormat guesses a firmware variable store's format from its name.
func imageFormat(path string) string {
	if strings.HasSuffix(path, ".qcow2") {
		return "qcow2"
	}
	return "raw"
}
