package imagebuild

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Kernel is the kernel found in a root directory's /boot.
type Kernel struct {
	Version string // 6.12.38+deb13-cloud-amd64
	Image   string // ROOT/boot/vmlinuz-<version>
	Initrd  string // ROOT/boot/initrd.img-<version>
	Config  string // ROOT/boot/config-<version>, "" when absent
}

// FindKernel picks the newest kernel in root/boot that has an initrd.
func FindKernel(root string) (*Kernel, error) {
	images, err := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if err != nil {
		return nil, err
	}
	var versions []string
	for _, img := range images {
		v := strings.TrimPrefix(filepath.Base(img), "vmlinuz-")
		if _, err := os.Stat(filepath.Join(root, "boot", "initrd.img-"+v)); err == nil {
			versions = append(versions, v)
		}
	}
	if len(versions) == 0 {
		return nil, fmt.Errorf("no kernel with an initrd in %s (found %d vmlinuz-*): is a linux-image package in the recipe?",
			filepath.Join(root, "boot"), len(images))
	}
	slices.SortFunc(versions, compareVersions)
	v := versions[len(versions)-1]
	k := &Kernel{
		Version: v,
		Image:   filepath.Join(root, "boot", "vmlinuz-"+v),
		Initrd:  filepath.Join(root, "boot", "initrd.img-"+v),
	}
	if c := filepath.Join(root, "boot", "config-"+v); fileExists(c) {
		k.Config = c
	}
	return k, nil
}

// compareVersions orders kernel versions by their numeric runs
// (6.12.9 < 6.12.10), then as strings.
func compareVersions(a, b string) int {
	na, nb := numbers(a), numbers(b)
	for i := 0; i < len(na) && i < len(nb); i++ {
		if na[i] != nb[i] {
			if na[i] < nb[i] {
				return -1
			}
			return 1
		}
	}
	if len(na) != len(nb) {
		return len(na) - len(nb)
	}
	return strings.Compare(a, b)
}

func numbers(s string) []int {
	var out []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r < '0' || r > '9' }) {
		n, _ := strconv.Atoi(f)
		out = append(out, n)
	}
	return out
}

// bootDrivers() are what the kernel needs to mount the root filesystem of a
// built image: the virtio PCI transport, the virtio disk and ext4. Each must
// be built in (=y) or be a module in the initrd.
func bootDrivers() []struct{ config, module string } {
	return []struct{ config, module string }{
		{"CONFIG_VIRTIO_PCI", "virtio_pci"},
		{"CONFIG_VIRTIO_BLK", "virtio_blk"},
		{"CONFIG_EXT4_FS", "ext4"},
	}
}

// CheckBootDrivers verifies that the kernel can mount the root disk: for
// every boot driver, the kernel config says built-in, or the initrd holds
// the module. It returns one note per driver ("virtio_blk: module in
// initrd"). Without a kernel config every driver must be in the initrd.
func CheckBootDrivers(k *Kernel) ([]string, error) {
	config := map[string]string{}
	if k.Config != "" {
		b, err := os.ReadFile(k.Config)
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if name, val, ok := strings.Cut(line, "="); ok && strings.HasPrefix(name, "CONFIG_") {
				config[name] = val
			}
		}
	}
	modules := map[string]bool{}
	err := InitrdFiles(k.Initrd, func(name string) {
		base := filepath.Base(name)
		if i := strings.Index(base, ".ko"); i > 0 {
			modules[strings.ReplaceAll(base[:i], "-", "_")] = true
		}
	})
	if err != nil {
		return nil, fmt.Errorf("reading initrd %s: %w", k.Initrd, err)
	}
	var notes []string
	var missing []string
	for _, d := range bootDrivers() {
		switch {
		case config[d.config] == "y":
			notes = append(notes, d.module+": built in")
		case modules[d.module]:
			notes = append(notes, d.module+": module in initrd")
		default:
			state := config[d.config]
			if state == "" {
				state = "not set"
			}
			missing = append(missing, fmt.Sprintf("%s (%s=%s, not in initrd)", d.module, d.config, state))
		}
	}
	if len(missing) > 0 {
		return notes, fmt.Errorf("kernel %s cannot mount the root disk: missing %s", k.Version, strings.Join(missing, ", "))
	}
	return notes, nil
}

// InitrdFiles calls visit with the name of every file in an initramfs: a
// sequence of newc cpio archives, each plain or compressed (gzip, zstd,
// xz), as initramfs-tools writes them (early microcode first, then the
// compressed main archive).
func InitrdFiles(path string, visit func(name string)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return cpioSegments(bufio.NewReaderSize(f, 1<<16), visit)
}

const (
	magicGzip = "\x1f\x8b"
	magicZstd = "\x28\xb5\x2f\xfd"
	magicXZ   = "\xfd7zXZ\x00"
)

func cpioSegments(r *bufio.Reader, visit func(string)) error {
	for {
		// Archives are padded with NULs between them.
		for {
			b, err := r.Peek(1)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if b[0] != 0 {
				break
			}
			if _, err := r.Discard(1); err != nil {
				return err
			}
		}
		head, _ := r.Peek(6)
		switch {
		case bytes.HasPrefix(head, []byte("07070")):
			if err := cpioArchive(r, visit); err != nil {
				return err
			}
		case bytes.HasPrefix(head, []byte(magicZstd)):
			zr, err := zstd.NewReader(r)
			if err != nil {
				return err
			}
			defer zr.Close()
			return cpioSegments(bufio.NewReaderSize(zr, 1<<16), visit)
		case bytes.HasPrefix(head, []byte(magicGzip)):
			zr, err := gzip.NewReader(r)
			if err != nil {
				return err
			}
			return cpioSegments(bufio.NewReaderSize(zr, 1<<16), visit)
		case bytes.HasPrefix(head, []byte(magicXZ)):
			zr, err := xz.NewReader(r)
			if err != nil {
				return err
			}
			return cpioSegments(bufio.NewReaderSize(zr, 1<<16), visit)
		default:
			return fmt.Errorf("unsupported initramfs segment starting with %x (want cpio, gzip, zstd or xz)", head)
		}
	}
}

// cpioArchive reads one newc ("070701"/"070702") archive up to its
// TRAILER!!! entry.
func cpioArchive(r *bufio.Reader, visit func(string)) error {
	hdr := make([]byte, 110)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			return fmt.Errorf("cpio header: %w", err)
		}
		if !bytes.HasPrefix(hdr, []byte("07070")) {
			return fmt.Errorf("bad cpio magic %q", hdr[:6])
		}
		field := func(i int) (int64, error) {
			return strconv.ParseInt(string(hdr[6+8*i:6+8*i+8]), 16, 64)
		}
		size, err := field(6)
		if err != nil {
			return fmt.Errorf("cpio file size: %w", err)
		}
		nameSize, err := field(11)
		if err != nil || nameSize < 1 || nameSize > 4096 {
			return fmt.Errorf("cpio name size %d: %v", nameSize, err)
		}
		name := make([]byte, nameSize)
		if _, err := io.ReadFull(r, name); err != nil {
			return fmt.Errorf("cpio name: %w", err)
		}
		n := string(name[:nameSize-1])
		if _, err := r.Discard(pad4(110 + nameSize)); err != nil {
			return err
		}
		if n == "TRAILER!!!" {
			return nil
		}
		visit(n)
		if _, err := r.Discard(int(size) + pad4(size)); err != nil {
			return fmt.Errorf("cpio data of %s: %w", n, err)
		}
	}
}

func pad4(n int64) int { return int((4 - n%4) % 4) }

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
