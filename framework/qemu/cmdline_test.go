package qemu

import (
	"github.com/guestcatalog/guestcatalog/catalog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func baseSpec() Spec {
	return Spec{
		Name:        "debian-13",
		Arch:        ArchX8664,
		Accel:       AccelTCG,
		CPUs:        2,
		MemoryBytes: 2 << 30,
		Disk:        Drive{Path: "/run/g/r1/disk.qcow2"},
		Seed:        "/run/g/r1/seed.iso",
		Forwards:    []Forward{{HostPort: 40022, GuestPort: 22}},
		SerialLog:   "/art/serial.log",
		QMPSocket:   "/run/g/r1/qmp.sock",
		PIDFile:     "/run/g/r1/qemu.pid",
	}
}

// tail is the part every x86 spec with a disk, a seed and one forward
// shares after the firmware and kernel arguments.
var diskSeedNetTail = []string{
	"-drive", "if=none,id=drive0,file=/run/g/r1/disk.qcow2,format=qcow2,cache=unsafe,discard=unmap",
	"-device", "virtio-blk-pci,drive=drive0,bootindex=0",
	"-drive", "if=none,id=drive1,file=/run/g/r1/seed.iso,format=raw,readonly=on",
	"-device", "virtio-blk-pci,drive=drive1",
	"-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:40022-:22",
	"-device", "virtio-net-pci,netdev=net0",
	"-device", "virtio-rng-pci",
	"-chardev", "file,id=serial0,path=/art/serial.log", "-serial", "chardev:serial0",
	"-chardev", "socket,id=qmp0,path=/run/g/r1/qmp.sock,server=on,wait=off",
	"-mon", "chardev=qmp0,mode=control",
	"-pidfile", "/run/g/r1/qemu.pid",
}

// kernelTail is diskSeedNetTail for a direct kernel boot: QEMU's
// linuxboot ROM owns boot index 0 then.
var kernelTail = func() []string {
	t := append([]string(nil), diskSeedNetTail...)
	t[3] = "virtio-blk-pci,drive=drive0"
	return t
}()

func join(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestCmdline(t *testing.T) {
	head := func(bin, accel, machine, cpu, smp, mem string) []string {
		return []string{bin, "-nodefaults", "-no-user-config", "-display", "none",
			"-name", "guest=debian-13",
			"-accel", accel, "-machine", machine, "-cpu", cpu, "-smp", smp, "-m", mem}
	}
	cases := []struct {
		name string
		edit func(*Spec)
		want []string
	}{
		{
			name: "x86 bios tcg",
			edit: func(s *Spec) {},
			want: join(head("qemu-system-x86_64", "tcg,thread=multi", "q35", "max", "2", "2048"), diskSeedNetTail),
		},
		{
			name: "x86 bios kvm",
			edit: func(s *Spec) { s.Accel = AccelKVM },
			want: join(head("qemu-system-x86_64", "kvm", "q35", "host", "2", "2048"), diskSeedNetTail),
		},
		{
			name: "x86 uefi",
			edit: func(s *Spec) {
				s.Firmware = FirmwareUEFI
				s.FirmwareVars = "/cache/vm/efivars.qcow2"
			},
			want: join(head("qemu-system-x86_64", "tcg,thread=multi", "q35", "max", "2", "2048"),
				[]string{
					"-drive", "if=pflash,unit=0,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
					"-drive", "if=pflash,unit=1,format=qcow2,file=/cache/vm/efivars.qcow2",
				}, diskSeedNetTail),
		},
		{
			name: "x86 uefi raw vars and own code",
			edit: func(s *Spec) {
				s.Firmware = FirmwareUEFI
				s.FirmwareCode = "/fw/CODE.fd"
				s.FirmwareVars = "/run/g/r1/VARS.fd"
			},
			want: join(head("qemu-system-x86_64", "tcg,thread=multi", "q35", "max", "2", "2048"),
				[]string{
					"-drive", "if=pflash,unit=0,format=raw,readonly=on,file=/fw/CODE.fd",
					"-drive", "if=pflash,unit=1,format=raw,file=/run/g/r1/VARS.fd",
				}, diskSeedNetTail),
		},
		{
			name: "x86 direct kernel boot adds a serial console",
			edit: func(s *Spec) {
				s.Kernel, s.Initrd, s.Append = "/img/vmlinuz", "/img/initrd.img", "root=/dev/vda rw"
			},
			want: join(head("qemu-system-x86_64", "tcg,thread=multi", "q35", "max", "2", "2048"),
				[]string{"-kernel", "/img/vmlinuz", "-initrd", "/img/initrd.img", "-append", "root=/dev/vda rw console=ttyS0,115200"},
				kernelTail),
		},
		{
			name: "kernel boot keeps an explicit console",
			edit: func(s *Spec) {
				s.Kernel, s.Append = "/img/vmlinuz", "root=/dev/vda console=hvc0"
			},
			want: join(head("qemu-system-x86_64", "tcg,thread=multi", "q35", "max", "2", "2048"),
				[]string{"-kernel", "/img/vmlinuz", "-append", "root=/dev/vda console=hvc0"},
				kernelTail),
		},
		{
			name: "aarch64 tcg boots AAVMF",
			edit: func(s *Spec) {
				s.Arch = ArchAarch64
				s.FirmwareVars = "/run/g/r1/efivars.qcow2"
			},
			want: join([]string{"qemu-system-aarch64", "-nodefaults", "-no-user-config", "-display", "none",
				"-name", "guest=debian-13",
				"-accel", "tcg,thread=multi", "-machine", "virt,gic-version=max", "-cpu", "max,pauth-impdef=on", "-smp", "2", "-m", "2048",
				"-drive", "if=pflash,unit=0,format=raw,readonly=on,file=/usr/share/AAVMF/AAVMF_CODE.fd",
				"-drive", "if=pflash,unit=1,format=qcow2,file=/run/g/r1/efivars.qcow2",
			}, diskSeedNetTail),
		},
		{
			name: "aarch64 kvm direct kernel boot needs no firmware",
			edit: func(s *Spec) {
				s.Arch, s.Accel = ArchAarch64, AccelKVM
				s.Kernel, s.Append = "/img/Image", "root=/dev/vda"
			},
			want: join([]string{"qemu-system-aarch64", "-nodefaults", "-no-user-config", "-display", "none",
				"-name", "guest=debian-13",
				"-accel", "kvm", "-machine", "virt,gic-version=max", "-cpu", "host", "-smp", "2", "-m", "2048",
				"-kernel", "/img/Image", "-append", "root=/dev/vda console=ttyAMA0",
			}, kernelTail),
		},
		{
			name: "forwards, loadvm, no reboot, extra args, custom cpu",
			edit: func(s *Spec) {
				s.Forwards = append(s.Forwards, Forward{Proto: "udp", HostPort: 40053, GuestPort: 53}, Forward{HostPort: 48080, GuestPort: 80})
				s.LoadVM = "provisioned"
				s.NoReboot = true
				s.CPU = "Skylake-Client"
				s.MemoryBytes = 1<<30 + 1 // rounded up to MiB
				s.ExtraArgs = []string{"-rtc", "base=utc"}
				s.MACAddress = "52:54:00:aa:bb:cc"
			},
			want: join(head("qemu-system-x86_64", "tcg,thread=multi", "q35", "Skylake-Client", "2", "1025"),
				diskSeedNetTail[:8],
				[]string{
					"-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:40022-:22,hostfwd=udp:127.0.0.1:40053-:53,hostfwd=tcp:127.0.0.1:48080-:80",
					"-device", "virtio-net-pci,netdev=net0,mac=52:54:00:aa:bb:cc",
				},
				diskSeedNetTail[12:],
				[]string{"-no-reboot", "-loadvm", "provisioned", "-rtc", "base=utc"}),
		},
		{
			name: "probe: diskless, no network, debugcon, no seed",
			edit: func(s *Spec) {
				s.Disk, s.Seed, s.Forwards = Drive{}, "", nil
				s.Diskless, s.NoNetwork = true, true
				s.Debugcon = "/run/g/r1/debugcon.log"
				s.PIDFile, s.SerialLog = "", ""
				s.CPUs, s.MemoryBytes = 1, 128<<20
			},
			want: join(head("qemu-system-x86_64", "tcg,thread=multi", "q35", "max", "1", "128"), []string{
				"-device", "virtio-rng-pci",
				"-chardev", "file,id=debugcon0,path=/run/g/r1/debugcon.log",
				"-device", "isa-debugcon,iobase=0x402,chardev=debugcon0",
				"-chardev", "socket,id=qmp0,path=/run/g/r1/qmp.sock,server=on,wait=off",
				"-mon", "chardev=qmp0,mode=control",
			}),
		},
		{
			name: "commas in paths are escaped in option values",
			edit: func(s *Spec) {
				s.Disk.Path = "/data/a,b/disk.qcow2"
				s.Drives = []Drive{{Path: "/data/extra.raw", Format: "raw", Cache: "none"}}
			},
			want: join(head("qemu-system-x86_64", "tcg,thread=multi", "q35", "max", "2", "2048"), []string{
				"-drive", "if=none,id=drive0,file=/data/a,,b/disk.qcow2,format=qcow2,cache=unsafe,discard=unmap",
				"-device", "virtio-blk-pci,drive=drive0,bootindex=0",
				"-drive", "if=none,id=drive1,file=/run/g/r1/seed.iso,format=raw,readonly=on",
				"-device", "virtio-blk-pci,drive=drive1",
				"-drive", "if=none,id=drive2,file=/data/extra.raw,format=raw,cache=none,discard=unmap",
				"-device", "virtio-blk-pci,drive=drive2",
			}, diskSeedNetTail[8:]),
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := baseSpec()
			c.edit(&s)
			got, err := Cmdline(s)
			require.NoError(t, err)
			got = withoutVMGenID(t, s.Arch, got) // TestCmdlineVMGenID
			assert.Equal(t, c.want, got, "\n%s", strings.Join(got, " "))
		})
	}
}

// withoutVMGenID drops the vmgenid device that every x86_64 argv carries
// right after virtio-rng-pci (and checks it is there).
func withoutVMGenID(t *testing.T, arch string, argv []string) []string {
	t.Helper()
	for i := 0; i+3 < len(argv); i++ {
		if argv[i+1] == "virtio-rng-pci" && argv[i+2] == "-device" && argv[i+3] == "vmgenid,guid=auto" {
			return append(append([]string(nil), argv[:i+2]...), argv[i+4:]...)
		}
	}
	if arch == "" || arch == ArchX8664 {
		t.Errorf("x86_64 argv without -device vmgenid,guid=auto: %s", strings.Join(argv, " "))
	}
	return argv
}

// Every x86_64 guest gets a VM generation ID that is new on each QEMU
// start (a resumed snapshot reseeds its RNG); aarch64 virt has no such
// device in QEMU 7.2 (-device help lists none), so it gets none.
// A saveable machine's RAM is a shared memory file; a resumed one maps
// the saved file copy-on-write and waits for its state (-incoming defer).
func TestCmdlineMemoryFileAndIncoming(t *testing.T) {
	s := baseSpec()
	s.MemoryFile, s.MemoryShared = "/dev/shm/g-ram", true
	got, err := Cmdline(s)
	require.NoError(t, err)
	line := strings.Join(got, " ")
	assert.Contains(t, line, "-machine q35,memory-backend=pc.ram -cpu max -smp 2 -m 2048 -object memory-backend-file,id=pc.ram,size=2048M,mem-path=/dev/shm/g-ram,share=on ")
	assert.NotContains(t, line, "-incoming")

	s.MemoryFile, s.MemoryShared, s.Incoming = "/cache/saved,1/ram.bin", false, true
	got, err = Cmdline(s)
	require.NoError(t, err)
	line = strings.Join(got, " ")
	assert.Contains(t, line, "mem-path=/cache/saved,,1/ram.bin,share=off ")
	assert.Equal(t, []string{"-incoming", "defer"}, got[len(got)-2:])
}

func TestCmdlineVMGenID(t *testing.T) {
	s := baseSpec()
	got, err := Cmdline(s)
	require.NoError(t, err)
	assert.Contains(t, strings.Join(got, " "), " -device virtio-rng-pci -device vmgenid,guid=auto ")
	s.Arch, s.FirmwareVars = ArchAarch64, "/v.qcow2"
	got, err = Cmdline(s)
	require.NoError(t, err)
	assert.NotContains(t, strings.Join(got, " "), "vmgenid")
}

func TestCmdlineDefaults(t *testing.T) {
	got, err := Cmdline(Spec{Accel: AccelTCG, Kernel: "/k", QMPSocket: "/q.sock"})
	require.NoError(t, err)
	s := strings.Join(got, " ")
	assert.Contains(t, s, "-smp 2 -m 1024")
	assert.Contains(t, s, Binary(catalog.HostArch()))
	assert.Contains(t, s, "-netdev user,id=net0 -device virtio-net-pci,netdev=net0")
	assert.NotContains(t, s, "-serial")
}

func TestCmdlineDoesNotChangeSpec(t *testing.T) {
	s := baseSpec()
	s.Forwards = []Forward{{HostPort: 1, GuestPort: 22}}
	_, err := Cmdline(s)
	require.NoError(t, err)
	assert.Equal(t, "", s.Forwards[0].Proto)
}

func TestCmdlineValidation(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Spec)
		want []string
	}{
		{"missing disk", func(s *Spec) { s.Disk = Drive{} },
			[]string{"disk.path: must be set (a qcow2 overlay of the image; or set kernel for a direct kernel boot)"}},
		{"port 0", func(s *Spec) { s.Forwards[0].HostPort = 0 },
			[]string{"forwards[0].hostPort: must be set (Start picks a free port for 0)"}},
		{"ports out of range and duplicate", func(s *Spec) {
			s.Forwards = []Forward{{HostPort: 70000, GuestPort: 0}, {HostPort: 2222, GuestPort: 22}, {HostPort: 2222, GuestPort: 80, Proto: "sctp"}}
		}, []string{
			"forwards[0].guestPort: must be 1-65535, got 0",
			"forwards[0].hostPort: must be 1-65535, got 70000",
			`forwards[2].proto: "sctp" is not supported (want tcp or udp)`,
		}},
		{"duplicate host port", func(s *Spec) {
			s.Forwards = []Forward{{HostPort: 2222, GuestPort: 22}, {HostPort: 2222, GuestPort: 80}}
		}, []string{"forwards[1].hostPort: 2222 is already used by forwards[0]"}},
		{"auto accel", func(s *Spec) { s.Accel = AccelAuto },
			[]string{`accel: "auto" must be resolved before building a command line (use Launch)`}},
		{"no accel", func(s *Spec) { s.Accel = "" }, []string{"accel: must be set (kvm or tcg)"}},
		{"bad accel and arch", func(s *Spec) { s.Accel, s.Arch = "hvf", "riscv64" }, []string{
			`arch: "riscv64" is not supported (want x86_64 or aarch64)`,
			`accel: "hvf" is not supported (want kvm or tcg)`,
		}},
		{"uefi without vars", func(s *Spec) { s.Firmware = FirmwareUEFI },
			[]string{"firmwareVars: must be set for uefi (a per-machine copy of the variable store: CreateUEFIVars)"}},
		{"aarch64 bios", func(s *Spec) { s.Arch, s.Firmware, s.FirmwareVars = ArchAarch64, FirmwareBIOS, "/v" },
			[]string{"firmware: bios is x86-only; aarch64 boots uefi"}},
		{"initrd without kernel", func(s *Spec) { s.Initrd, s.Append = "/i", "root=/dev/vda" },
			[]string{"initrd: set without kernel", "append: set without kernel"}},
		{"bad sizes", func(s *Spec) { s.CPUs, s.MemoryBytes = -1, 1<<20 },
			[]string{"cpus: must be at least 1, got -1", "memoryBytes: must be at least 64 MiB, got 1048576"}},
		{"bad drive", func(s *Spec) {
			s.Disk.Format, s.Disk.Cache = "vmdk", "fast"
			s.Drives = []Drive{{}}
		}, []string{
			`disk.format: "vmdk" is not supported (want qcow2 or raw)`,
			`disk.cache: "fast" is not a QEMU cache mode`,
			"drives[0].path: must be set",
		}},
		{"forwards without network", func(s *Spec) { s.NoNetwork = true }, []string{"forwards: set with noNetwork"}},
		{"no qmp socket", func(s *Spec) { s.QMPSocket = "" }, []string{"qmpSocket: must be set"}},
		{"debugcon on arm", func(s *Spec) { s.Arch, s.FirmwareVars, s.Debugcon = ArchAarch64, "/v", "/d" }, []string{"debugcon: x86-only"}},
		{"incoming and loadvm", func(s *Spec) { s.Incoming, s.LoadVM = true, "ready" }, []string{"incoming: set with loadVM (one way to resume)"}},
		{"shared memory without a file", func(s *Spec) { s.MemoryShared = true }, []string{"memoryShared: set without memoryFile"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := baseSpec()
			c.edit(&s)
			_, err := Cmdline(s)
			require.Error(t, err)
			assert.Equal(t, "invalid qemu spec: "+strings.Join(c.want, "\n"), err.Error())
		})
	}
}

func TestCmdlineSocketPathTooLong(t *testing.T) {
	s := baseSpec()
	s.QMPSocket = "/tmp/" + strings.Repeat("d", 94) + "/qmp.sock" // 108 bytes
	require.Len(t, s.QMPSocket, 108)
	_, err := Cmdline(s)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "qmpSocket: ")
	assert.Contains(t, err.Error(), "is 108 bytes; unix socket paths must be shorter than 108: use a shorter run dir root (GUESTCATALOG_RUNTIME_DIR)")

	s.QMPSocket = s.QMPSocket[1:] // 107 bytes is fine
	_, err = Cmdline(s)
	require.NoError(t, err)
}

func TestDefaultCPU(t *testing.T) {
	assert.Equal(t, "host", DefaultCPU(ArchX8664, AccelKVM))
	assert.Equal(t, "max", DefaultCPU(ArchX8664, AccelTCG))
	assert.Equal(t, "host", DefaultCPU(ArchAarch64, AccelKVM))
	assert.Equal(t, "max,pauth-impdef=on", DefaultCPU(ArchAarch64, AccelTCG))
}

func TestResolveAccel(t *testing.T) {
	t.Setenv("GUESTCATALOG_ACCEL", "tcg") // the environment is framework/config's
	a, err := ResolveAccel("")
	require.NoError(t, err)
	assert.Equal(t, AccelAuto, a)
	a, err = ResolveAccel("kvm")
	require.NoError(t, err)
	assert.Equal(t, AccelKVM, a)
	_, err = ResolveAccel("hvf")
	assert.EqualError(t, err, `accelerator "hvf": want auto, kvm or tcg`)
}

func TestExitErrorMessage(t *testing.T) {
	e := &ExitError{Code: -1, Signal: "aborted", Stderr: []string{
		"qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69",
		"qemu-system-x86_64: ../../target/i386/kvm/kvm.c:3183: kvm_buf_set_msrs: Assertion `ret == cpu->kvm_msr_buf->nmsrs' failed.",
	}}
	assert.Equal(t, "qemu killed by signal aborted: error: failed to set MSR 0x10a to 0x69", e.Error())
	e = &ExitError{Code: 1, Stderr: []string{
		"qemu-system-x86_64: -netdev user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22: Could not set up host forwarding rule 'tcp:127.0.0.1:2222-:22'",
		"",
	}}
	assert.Equal(t, "qemu exited with status 1: -netdev user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22: Could not set up host forwarding rule 'tcp:127.0.0.1:2222-:22'", e.Error())
	e = &ExitError{Code: -1, Signal: "killed", Requested: true, Stderr: []string{"qemu-system-x86_64: terminating on signal 15 from pid 1"}}
	assert.Equal(t, "qemu killed by signal killed", e.Error())
}
