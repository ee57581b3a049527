package testimage

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// BusyboxSuite is the Debian suite FetchBusybox takes busybox-static from.
const BusyboxSuite = "trixie"

// DebianMirror is the archive FetchBusybox uses when none is given.
const DebianMirror = "http://deb.debian.org/debian"

// GoArch is Go's and OCI's name of a catalog arch (x86_64 → amd64,
// aarch64 → arm64).
func GoArch(arch string) string {
	switch arch {
	case "x86_64":
		return "amd64"
	case "aarch64":
		return "arm64"
	}
	return arch
}

// elfMachine is the ELF machine of a catalog arch.
func elfMachine(arch string) elf.Machine {
	if arch == "aarch64" {
		return elf.EM_AARCH64
	}
	return elf.EM_X86_64
}

// FetchBusybox returns a statically linked busybox for a guest arch whose
// binaries the host's /bin/busybox cannot be (an aarch64 guest on an
// x86_64 host): Debian's busybox-static for that arch, unpacked by
// `mmdebstrap --variant=extract` (no maintainer scripts run, no host apt
// state changes) from mirror ("" : DebianMirror) into
// <cacheDir>/testdata/busybox-<arch> once; later calls (and processes)
// reuse it offline.
func FetchBusybox(ctx context.Context, arch, cacheDir, mirror string) (string, error) {
	if mirror == "" {
		mirror = DebianMirror
	}
	dir := filepath.Join(cacheDir, "testdata")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	dst := filepath.Join(dir, "busybox-"+arch)
	lock := flock.New(dst + ".lock")
	if ok, err := lock.TryLockContext(ctx, 250*time.Millisecond); err != nil || !ok {
		return "", fmt.Errorf("locking %s: %v", dst, err)
	}
	defer func() { _ = lock.Unlock() }()
	if err := checkBusybox(dst, arch); err == nil {
		return dst, nil
	}
	mm, err := exec.LookPath("mmdebstrap")
	if err != nil {
		return "", fmt.Errorf("a %s busybox for the test images needs mmdebstrap (apt-get install mmdebstrap): %w", arch, err)
	}
	tmp, err := os.MkdirTemp(dir, ".busybox-"+arch+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "root")
	cmd := exec.CommandContext(ctx, mm, "--variant=extract", "--architectures="+GoArch(arch),
		"--include=busybox-static", BusyboxSuite, root, mirror)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("fetching busybox-static:%s: mmdebstrap: %w: %s", GoArch(arch), err, lastLines(out.String(), 10))
	}
	src := ""
	for _, p := range []string{"usr/bin/busybox", "bin/busybox"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			src = filepath.Join(root, p)
			break
		}
	}
	if src == "" {
		return "", fmt.Errorf("busybox-static:%s holds no usr/bin/busybox", GoArch(arch))
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(dst+".tmp", b, 0o755); err != nil {
		return "", err
	}
	if err := checkBusybox(dst+".tmp", arch); err != nil {
		return "", err
	}
	return dst, os.Rename(dst+".tmp", dst)
}

// checkBusybox says whether path is a static ELF for arch.
func checkBusybox(path, arch string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if f.Machine != elfMachine(arch) {
		return fmt.Errorf("%s is a %s binary, not %s", path, f.Machine, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked", path)
		}
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
