// Package qemutest provides real guests for integration tests of QEMU
// plumbing: a Debian cloud kernel (fetched once from Debian's archive with
// apt-get download and cached) and busybox initramfs images built at run
// time, which boot under TCG in a few seconds. It also holds the tool
// guard integration tests share.
package qemutest

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gofrs/flock"
)

// EnvRequireTools makes a missing tool a test failure instead of a skip (CI).
const EnvRequireTools = "GUESTCATALOG_REQUIRE_TOOLS"

// EnvKernel points at a kernel to use instead of fetching one.
const EnvKernel = "GUESTCATALOG_TEST_KERNEL"

// RequireTools skips an integration test under -short, and when a tool is
// not on PATH, unless GUESTCATALOG_REQUIRE_TOOLS=1, which makes that a
// failure.
func RequireTools(t testing.TB, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing(t, "%s not found (%v)", tool, err)
		}
	}
}

// RequireFiles is RequireTools for data files (firmware images): a
// missing one skips, or fails when GUESTCATALOG_REQUIRE_TOOLS=1; fix
// names the package to install.
func RequireFiles(t testing.TB, fix string, files ...string) {
	t.Helper()
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			missing(t, "%s missing (%s)", f, fix)
		}
	}
}

func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(EnvRequireTools) == "1" {
		t.Fatalf("%s; required because %s=1", msg, EnvRequireTools)
	}
	t.Skip(msg)
}

// CacheDir is where test data is cached: $GUESTCATALOG_CACHE/testdata,
// else <user cache dir>/guestcatalog/testdata.
func CacheDir() string {
	if c := os.Getenv("GUESTCATALOG_CACHE"); c != "" {
		return filepath.Join(c, "testdata")
	}
	c, err := os.UserCacheDir()
	if err != nil {
		c = os.TempDir()
	}
	return filepath.Join(c, "guestcatalog", "testdata")
}

// KernelFiles is a Linux kernel and the modules a test guest may load.
type KernelFiles struct {
	Kernel  string
	Version string
	// Modules maps a module name (button, evdev) to its .ko file.
	Modules map[string]string
}

// Modules a test guest loads: the ACPI power button and the event device
// it reports through, so the guest can react to system_powerdown.
func wantModules() []string {
	return []string{"button", "evdev"}
}

// Kernel returns a Debian cloud kernel for the host arch: $GUESTCATALOG_TEST_KERNEL
// if set (no modules then), else one fetched with `apt-get download` of
// linux-image-cloud-<arch>'s dependency into CacheDir() (once; later runs
// reuse it offline).
func Kernel(t testing.TB) KernelFiles {
	t.Helper()
	if k := os.Getenv(EnvKernel); k != "" {
		return KernelFiles{Kernel: k}
	}
	dir := filepath.Join(CacheDir(), "kernel")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	lock := flock.New(filepath.Join(dir, ".lock"))
	if err := lock.Lock(); err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	if kf, ok := cachedKernel(dir); ok {
		return kf
	}
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing(t, "no cached test kernel in %s and %s is not available to fetch one", dir, tool)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	meta := "linux-image-cloud-amd64"
	if runtime.GOARCH == "arm64" {
		meta = "linux-image-cloud-arm64"
	}
	out, err := exec.CommandContext(ctx, "apt-cache", "depends", meta).CombinedOutput()
	if err != nil {
		missing(t, "apt-cache depends %s: %v: %s", meta, err, out)
	}
	m := regexp.MustCompile(`Depends: (linux-image-\S+)`).FindSubmatch(out)
	if m == nil {
		missing(t, "apt-cache depends %s names no kernel package (run apt-get update?): %s", meta, out)
	}
	pkg := string(m[1])
	tmp, err := os.MkdirTemp(dir, "fetch-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "apt-get", "download", pkg)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		missing(t, "apt-get download %s: %v: %s", pkg, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		t.Fatalf("apt-get download %s left %v", pkg, debs)
	}
	root := filepath.Join(tmp, "root")
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", debs[0], root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v: %s", err, out)
	}
	kernels, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(kernels) != 1 {
		t.Fatalf("package %s holds kernels %v", pkg, kernels)
	}
	version := strings.TrimPrefix(filepath.Base(kernels[0]), "vmlinuz-")
	dst := filepath.Join(dir, version)
	stage := dst + ".tmp"
	os.RemoveAll(stage)
	if err := os.MkdirAll(stage, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(kernels[0], filepath.Join(stage, "vmlinuz")); err != nil {
		t.Fatal(err)
	}
	for _, mod := range wantModules() {
		found, _ := filepath.Glob(filepath.Join(root, "lib", "modules", version, "kernel", "drivers", "*", mod+".ko"))
		if len(found) == 1 {
			if err := copyFile(found[0], filepath.Join(stage, mod+".ko")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Rename(stage, dst); err != nil {
		t.Fatal(err)
	}
	kf, ok := cachedKernel(dir)
	if !ok {
		t.Fatalf("kernel not found in %s after fetching", dir)
	}
	return kf
}

func cachedKernel(dir string) (KernelFiles, bool) {
	found, _ := filepath.Glob(filepath.Join(dir, "*", "vmlinuz"))
	for _, k := range found {
		d := filepath.Dir(k)
		if strings.HasSuffix(d, ".tmp") {
			continue
		}
		kf := KernelFiles{Kernel: k, Version: filepath.Base(d), Modules: map[string]string{}}
		for _, mod := range wantModules() {
			if p := filepath.Join(d, mod+".ko"); fileExists(p) {
				kf.Modules[mod] = p
			}
		}
		return kf, true
	}
	return KernelFiles{}, false
}

// Busybox returns the path of a statically linked busybox, or skips.
func Busybox(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("busybox")
	if err != nil {
		missing(t, "busybox not found (apt-get install busybox-static)")
	}
	f, err := elf.Open(p)
	if err != nil {
		missing(t, "%s: %v", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			missing(t, "%s is dynamically linked (apt-get install busybox-static)", p)
		}
	}
	return p
}

// Initramfs writes an uncompressed initramfs (newc cpio) holding a static
// busybox with its applets linked in /bin, the given kernel modules in
// /lib/modules, and init as /init (a script run by busybox sh). It returns
// the file's path, in t.TempDir().
func Initramfs(t testing.TB, init string, modules map[string]string) string {
	t.Helper()
	bb := Busybox(t)
	bin, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	var w cpioWriter
	for _, d := range []string{"bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules"} {
		w.dir(d)
	}
	w.file("bin/busybox", 0o755, bin)
	for _, app := range []string{"sh", "mount", "poweroff", "reboot", "sleep", "cat", "echo", "head",
		"insmod", "ls", "seq", "date", "uptime", "true", "false", "sync", "dd", "mdev", "grep"} {
		w.symlink("bin/"+app, "busybox")
	}
	for name, path := range modules {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		w.file("lib/modules/"+name+".ko", 0o644, b)
	}
	w.file("init", 0o755, []byte("#!/bin/sh\nexport PATH=/bin\n"+init))
	w.trailer()
	p := filepath.Join(t.TempDir(), "initramfs.cpio")
	if err := os.WriteFile(p, w.buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// PreludeMounts mounts /proc, /sys and /dev in a test guest's init.
const PreludeMounts = "mount -t proc proc /proc\nmount -t sysfs sys /sys\nmount -t devtmpfs dev /dev\n"

// PowerButton makes the guest power off (poweroff -f) when QEMU sends an
// ACPI power button press (system_powerdown): it loads the button and
// evdev modules and waits, in the background, for the first event of the
// input device named "Power Button".
const PowerButton = `for m in evdev button; do [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko; done
for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /dev/input/event0 ] && break; sleep 0.2; done
for e in /dev/input/event*; do
  [ "$(cat /sys/class/input/${e#/dev/input/}/device/name 2>/dev/null)" = "Power Button" ] || continue
  # Open the device now, before the guest says it is ready: an event sent
  # before the reader opened it would be lost.
  exec 3<$e
  (head -c 1 <&3 >/dev/null; echo "POWER BUTTON"; poweroff -f) &
  break
done
`

// cpioWriter writes the "newc" cpio format the kernel unpacks.
type cpioWriter struct {
	buf bytes.Buffer
	ino uint32
}

func (w *cpioWriter) entry(name string, mode uint32, data []byte) {
	w.ino++
	nameZ := name + "\x00"
	fmt.Fprintf(&w.buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		w.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nameZ), 0)
	w.buf.WriteString(nameZ)
	w.pad()
	w.buf.Write(data)
	w.pad()
}

func (w *cpioWriter) pad() {
	for w.buf.Len()%4 != 0 {
		w.buf.WriteByte(0)
	}
}

func (w *cpioWriter) dir(name string)                         { w.entry(name, 0o040755, nil) }
func (w *cpioWriter) file(name string, perm uint32, b []byte) { w.entry(name, 0o100000|perm, b) }
func (w *cpioWriter) symlink(name, target string)             { w.entry(name, 0o120777, []byte(target)) }
func (w *cpioWriter) trailer()                                { w.entry("TRAILER!!!", 0, nil) }

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
