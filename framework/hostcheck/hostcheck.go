package hostcheck

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Architectures, named as QEMU and the catalog name them.
const (
	ArchX8664   = "x86_64"
	ArchAarch64 = "aarch64"
)

// DefaultBinfmtDir is where the kernel's binfmt_misc is mounted.
const DefaultBinfmtDir = "/proc/sys/fs/binfmt_misc"

// Status of a check.
const (
	OK   = "ok"
	Fail = "fail"
)

// ErrBinfmt is wrapped when qemu-user is not registered for an arch.
var ErrBinfmt = errors.New("qemu-user binfmt registration missing")

// Check is the outcome of one host check.
type Check struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	// Fix is what to run when Status is Fail.
	Fix string `json:"fix,omitempty"`
}

// Host names where the checks look; the zero value is this machine.
type Host struct {
	// BinfmtDir is the binfmt_misc mount ("" : DefaultBinfmtDir).
	BinfmtDir string
	// LookPath finds a program (nil : exec.LookPath).
	LookPath func(string) (string, error)
	// Stat stats a file (nil : os.Stat).
	Stat func(string) (fs.FileInfo, error)
}

func (h Host) binfmtDir() string {
	if h.BinfmtDir == "" {
		return DefaultBinfmtDir
	}
	return h.BinfmtDir
}

func (h Host) lookPath(p string) (string, error) {
	if h.LookPath == nil {
		return exec.LookPath(p)
	}
	return h.LookPath(p)
}

func (h Host) stat(p string) (fs.FileInfo, error) {
	if h.Stat == nil {
		return os.Stat(p)
	}
	return h.Stat(p)
}

// DebianArch is Debian's name of an arch (amd64, arm64).
func DebianArch(arch string) string {
	switch arch {
	case ArchX8664:
		return "amd64"
	case ArchAarch64:
		return "arm64"
	}
	return arch
}

// EmulatorPackage is the Debian package with qemu-system-<arch>.
func EmulatorPackage(arch string) string {
	switch arch {
	case ArchAarch64:
		return "qemu-system-arm"
	case ArchX8664:
		return "qemu-system-x86"
	}
	return "qemu-system-" + arch
}

// FirmwareFiles are the UEFI code and variable-store template an arch's
// downloaded (UEFI) images boot with, and the Debian package that has them.
func FirmwareFiles(arch string) (code, vars, pkg string) {
	switch arch {
	case ArchAarch64:
		return "/usr/share/AAVMF/AAVMF_CODE.fd", "/usr/share/AAVMF/AAVMF_VARS.fd", "qemu-efi-aarch64"
	case ArchX8664:
		return "/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd", "ovmf"
	}
	return "", "", ""
}

// Emulator checks that qemu-system-<arch> is installed.
func (h Host) Emulator(arch string) Check {
	name := "qemu-system-" + arch
	c := Check{Name: "emulator " + arch}
	p, err := h.lookPath(name)
	if err != nil {
		c.Status, c.Detail = Fail, name+" not found: "+arch+" guests cannot boot"
		c.Fix = "apt-get install -y " + EmulatorPackage(arch)
		return c
	}
	c.Status, c.Detail = OK, p
	return c
}

// Firmware checks the arch's UEFI firmware files.
func (h Host) Firmware(arch string) Check {
	code, vars, pkg := FirmwareFiles(arch)
	c := Check{Name: "firmware " + arch}
	if code == "" {
		c.Status, c.Detail = Fail, "no UEFI firmware known for "+arch
		return c
	}
	var missing []string
	for _, p := range []string{code, vars} {
		if _, err := h.stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		c.Status = Fail
		c.Detail = strings.Join(missing, ", ") + " missing: downloaded (UEFI) " + arch + " images cannot boot"
		c.Fix = "apt-get install -y " + pkg
		return c
	}
	c.Status, c.Detail = OK, code+", "+vars
	return c
}

// Binfmt is the kernel's registration of a qemu-user interpreter.
type Binfmt struct {
	Name        string
	Enabled     bool
	Interpreter string
	Flags       string
}

// ReadBinfmt reads <dir>/qemu-<arch>.
func ReadBinfmt(dir, arch string) (*Binfmt, error) {
	p := filepath.Join(dir, "qemu-"+arch)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return ParseBinfmt("qemu-"+arch, string(b)), nil
}

// ParseBinfmt parses a binfmt_misc entry file:
//
//	enabled
//	interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
//	flags: PF
func ParseBinfmt(name, text string) *Binfmt {
	b := &Binfmt{Name: name}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "enabled":
			b.Enabled = true
		case strings.HasPrefix(line, "interpreter "):
			b.Interpreter = strings.TrimSpace(strings.TrimPrefix(line, "interpreter "))
		case strings.HasPrefix(line, "flags:"):
			b.Flags = strings.TrimSpace(strings.TrimPrefix(line, "flags:"))
		}
	}
	return b
}

// BinfmtFix is the shell to make binfmt_misc run arch binaries through
// qemu-user-static (mount, then enable Debian's registration).
func BinfmtFix(arch string) string {
	return "apt-get install -y qemu-user-static binfmt-support; " +
		"mountpoint -q " + DefaultBinfmtDir + " || mount -t binfmt_misc binfmt_misc " + DefaultBinfmtDir + "; " +
		"update-binfmts --enable qemu-" + arch
}

// BinfmtReady returns nil when foreign binaries of arch run here through
// qemu-user in a chroot: binfmt_misc is mounted, qemu-<arch> is
// registered and enabled, with the F flag (the interpreter is opened at
// registration, so it works inside a chroot that lacks it), and the
// interpreter exists. The error wraps ErrBinfmt and says how to fix it.
func (h Host) BinfmtReady(arch string) error {
	dir := h.binfmtDir()
	if _, err := h.stat(filepath.Join(dir, "register")); err != nil {
		return fmt.Errorf("%w: binfmt_misc is not mounted at %s; fix: %s", ErrBinfmt, dir, BinfmtFix(arch))
	}
	b, err := ReadBinfmt(dir, arch)
	if err != nil {
		return fmt.Errorf("%w: qemu-%s is not registered in %s; fix: %s", ErrBinfmt, arch, dir, BinfmtFix(arch))
	}
	switch {
	case !b.Enabled:
		return fmt.Errorf("%w: qemu-%s is registered but disabled; fix: update-binfmts --enable qemu-%s", ErrBinfmt, arch, arch)
	case !strings.Contains(b.Flags, "F"):
		return fmt.Errorf("%w: qemu-%s is registered without the F (fix-binary) flag (flags %q), so it fails inside a chroot; fix: install qemu-user-static (its registration sets F) and update-binfmts --enable qemu-%s", ErrBinfmt, arch, b.Flags, arch)
	}
	if _, err := h.stat(b.Interpreter); err != nil {
		return fmt.Errorf("%w: qemu-%s interpreter %s: %v; fix: %s", ErrBinfmt, arch, b.Interpreter, err, BinfmtFix(arch))
	}
	return nil
}

// BinfmtCheck is BinfmtReady as a Check.
func (h Host) BinfmtCheck(arch string) Check {
	c := Check{Name: "binfmt qemu-" + arch}
	if err := h.BinfmtReady(arch); err != nil {
		c.Status = Fail
		msg := err.Error()
		if i := strings.Index(msg, "; fix: "); i >= 0 {
			c.Detail, c.Fix = msg[:i]+" (local "+arch+" image builds need it)", msg[i+len("; fix: "):]
		} else {
			c.Detail = msg
		}
		return c
	}
	c.Status, c.Detail = OK, "qemu-"+arch+" registered (flags include F): "+DebianArch(arch)+" root filesystems build through qemu-user"
	return c
}

// Foreign lists the checks a guest of arch needs on a host of hostArch;
// none when they are the same.
func (h Host) Foreign(arch, hostArch string) []Check {
	if arch == hostArch {
		return nil
	}
	return []Check{h.Emulator(arch), h.Firmware(arch), h.BinfmtCheck(arch), h.ArchTest(arch)}
}

// ArchTest checks for arch-test, which mmdebstrap runs before a
// foreign-arch bootstrap (it refuses one without it).
func (h Host) ArchTest(arch string) Check {
	c := Check{Name: "arch-test"}
	p, err := h.lookPath("arch-test")
	if err != nil {
		c.Status, c.Detail = Fail, "arch-test not found: mmdebstrap refuses to build "+DebianArch(arch)+" root filesystems without it"
		c.Fix = "apt-get install -y arch-test"
		return c
	}
	c.Status, c.Detail = OK, p
	return c
}
