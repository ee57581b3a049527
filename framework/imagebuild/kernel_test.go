package imagebuild

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/ulikunitz/xz"
)

// newc writes a newc cpio archive of the given files (name → content).
func newc(t *testing.T, names []string, content map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	pad := func() {
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
	}
	entry := func(ino int, name, data string, mode int) {
		fmt.Fprintf(&b, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
		b.WriteString(name)
		b.WriteByte(0)
		pad()
		b.WriteString(data)
		pad()
	}
	for i, n := range names {
		entry(i+1, n, content[n], 0o100644)
	}
	entry(0, "TRAILER!!!", "", 0)
	return b.Bytes()
}

func compress(t *testing.T, kind string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	var w io.WriteCloser
	var err error
	switch kind {
	case "gzip":
		w = gzip.NewWriter(&b)
	case "zstd":
		w, err = zstd.NewWriter(&b)
	case "xz":
		w, err = xz.NewWriter(&b)
	case "none":
		return data
	}
	require.NoError(t, err)
	_, err = w.Write(data)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return b.Bytes()
}

// initrd is an initramfs-tools style image: an uncompressed early archive
// (microcode), NUL padding, then the compressed main archive.
func initrd(t *testing.T, kind string, modules ...string) []byte {
	t.Helper()
	early := newc(t, []string{"kernel", "kernel/x86/microcode/GenuineIntel.bin"}, map[string]string{"kernel/x86/microcode/GenuineIntel.bin": "ucode"})
	names := []string{"init", "usr/lib/modules/6.12.0-cloud-amd64/modules.dep"}
	content := map[string]string{"init": "#!/bin/sh\n", "usr/lib/modules/6.12.0-cloud-amd64/modules.dep": "x"}
	for _, m := range modules {
		n := "usr/lib/modules/6.12.0-cloud-amd64/kernel/drivers/" + m
		names = append(names, n)
		content[n] = "\x7fELF module " + m
	}
	out := append(early, make([]byte, 512-len(early)%512)...)
	return append(out, compress(t, kind, newc(t, names, content))...)
}

func TestInitrdFiles(t *testing.T) {
	for _, kind := range []string{"none", "gzip", "zstd", "xz"} {
		t.Run(kind, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "initrd.img")
			require.NoError(t, os.WriteFile(p, initrd(t, kind, "block/virtio_blk.ko.xz", "virtio/virtio_pci.ko.zst"), 0o644))
			var names []string
			require.NoError(t, InitrdFiles(p, func(n string) { names = append(names, n) }))
			assert.Contains(t, names, "kernel/x86/microcode/GenuineIntel.bin", "early archive")
			assert.Contains(t, names, "init", "main archive")
			assert.Contains(t, names, "usr/lib/modules/6.12.0-cloud-amd64/kernel/drivers/block/virtio_blk.ko.xz")
		})
	}
}

func TestInitrdFilesRejectsGarbage(t *testing.T) {
	p := filepath.Join(t.TempDir(), "initrd.img")
	require.NoError(t, os.WriteFile(p, []byte("this is not an initramfs"), 0o644))
	err := InitrdFiles(p, func(string) {})
	assert.ErrorContains(t, err, "unsupported initramfs segment")

	// A truncated archive is an error, not a silent success.
	full := newc(t, []string{"init"}, map[string]string{"init": "#!/bin/sh\n"})
	require.NoError(t, os.WriteFile(p, full[:len(full)-40], 0o644))
	assert.Error(t, InitrdFiles(p, func(string) {}))
}

func bootDir(t *testing.T, versions map[string][]byte, config string) string {
	t.Helper()
	root := t.TempDir()
	boot := filepath.Join(root, "boot")
	require.NoError(t, os.MkdirAll(boot, 0o755))
	for v, rd := range versions {
		require.NoError(t, os.WriteFile(filepath.Join(boot, "vmlinuz-"+v), []byte("kernel "+v), 0o644))
		if rd != nil {
			require.NoError(t, os.WriteFile(filepath.Join(boot, "initrd.img-"+v), rd, 0o644))
		}
		if config != "" {
			require.NoError(t, os.WriteFile(filepath.Join(boot, "config-"+v), []byte(config), 0o644))
		}
	}
	return root
}

func TestFindKernelPicksTheNewestWithAnInitrd(t *testing.T) {
	rd := initrd(t, "zstd")
	root := bootDir(t, map[string][]byte{
		"6.12.9+deb13-cloud-amd64":  rd,
		"6.12.10+deb13-cloud-amd64": rd,
		"6.12.11+deb13-cloud-amd64": nil, // no initrd: skipped
	}, "CONFIG_VIRTIO_PCI=y\n")
	k, err := FindKernel(root)
	require.NoError(t, err)
	assert.Equal(t, "6.12.10+deb13-cloud-amd64", k.Version)
	assert.Equal(t, filepath.Join(root, "boot/vmlinuz-6.12.10+deb13-cloud-amd64"), k.Image)
	assert.Equal(t, filepath.Join(root, "boot/initrd.img-6.12.10+deb13-cloud-amd64"), k.Initrd)
	assert.Equal(t, filepath.Join(root, "boot/config-6.12.10+deb13-cloud-amd64"), k.Config)

	_, err = FindKernel(t.TempDir())
	assert.ErrorContains(t, err, "is a linux-image package in the recipe?")
}

func TestCheckBootDrivers(t *testing.T) {
	const debianCloud = "# comment\nCONFIG_VIRTIO_PCI=y\nCONFIG_VIRTIO_BLK=m\nCONFIG_EXT4_FS=y\n"
	ok := bootDir(t, map[string][]byte{"6.12.0-cloud-amd64": initrd(t, "zstd", "block/virtio_blk.ko.xz")}, debianCloud)
	k, err := FindKernel(ok)
	require.NoError(t, err)
	notes, err := CheckBootDrivers(k)
	require.NoError(t, err)
	assert.Equal(t, []string{"virtio_pci: built in", "virtio_blk: module in initrd", "ext4: built in"}, notes)

	missing := bootDir(t, map[string][]byte{"6.12.0-cloud-amd64": initrd(t, "zstd")}, debianCloud)
	k, err = FindKernel(missing)
	require.NoError(t, err)
	_, err = CheckBootDrivers(k)
	assert.ErrorContains(t, err, "cannot mount the root disk: missing virtio_blk (CONFIG_VIRTIO_BLK=m, not in initrd)")

	// Without a config, every driver must be a module in the initrd.
	noConfig := bootDir(t, map[string][]byte{"6.1.0-cloud-amd64": initrd(t, "gzip",
		"block/virtio_blk.ko", "virtio/virtio_pci.ko", "fs/ext4/ext4.ko")}, "")
	k, err = FindKernel(noConfig)
	require.NoError(t, err)
	_, err = CheckBootDrivers(k)
	assert.NoError(t, err)
}

func TestCompareVersions(t *testing.T) {
	assert.Negative(t, compareVersions("6.12.9+deb13-cloud-amd64", "6.12.10+deb13-cloud-amd64"))
	assert.Positive(t, compareVersions("6.1.0-30-cloud-amd64", "6.1.0-9-cloud-amd64"))
	assert.Zero(t, compareVersions("6.1.0", "6.1.0"))
}
