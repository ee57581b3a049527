package imagebuild

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofrs/flock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/hostcheck"
)

// noTools hides every build tool for the rest of the test: PATH here,
// and the option for Build's sbin search.
func noTools(t *testing.T) Option {
	t.Setenv("PATH", t.TempDir())
	return withSbinDirs(nil)
}

// writeEntry makes a complete cache entry for plan, as a build leaves it.
func writeEntry(t *testing.T, cache string, p *Plan) string { return writeEntryB(t, cache, p) }

func writeEntryB(t testing.TB, cache string, p *Plan) string {
	t.Helper()
	dir := EntryDir(cache, p.Key)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for _, f := range []string{DiskFile, KernelFile, InitrdFile} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644))
	}
	m := Meta{Key: p.Key, BuilderVersion: BuilderVersion, Plan: *p, Append: KernelAppend(p.Arch),
		Digest: "sha256:" + strings.Repeat("ab", 32), Kernel: "6.12.0-cloud-amd64", Sizes: Sizes{Filesystem: 1 << 30}}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, MetaFile), b, 0o644))
	return dir
}

var unitRecipe = catalog.BuildRecipe{Suite: "trixie", Packages: []string{"containerd"}, Bake: true}

func TestBuildReturnsTheCachedImageWithoutAnyTool(t *testing.T) {
	hide := noTools(t)
	cache := t.TempDir()
	p := mustPlan(t, unitRecipe, []string{"runc"}, catalog.HostArch())
	dir := writeEntry(t, cache, p)

	var out bytes.Buffer
	a, err := Build(context.Background(), unitRecipe, []string{"runc"}, WithCacheDir(cache), WithOutput(&out), hide)
	require.NoError(t, err)
	assert.Equal(t, StatusFromCache, a.Status)
	assert.Equal(t, p.Key, a.Key)
	assert.Equal(t, dir, a.Dir)
	assert.Equal(t, filepath.Join(dir, DiskFile), a.Disk)
	assert.Equal(t, filepath.Join(dir, KernelFile), a.Kernel)
	assert.Equal(t, filepath.Join(dir, InitrdFile), a.Initrd)
	assert.Equal(t, KernelAppend(catalog.HostArch()), a.Append)
	assert.Equal(t, "sha256:"+strings.Repeat("ab", 32), a.Digest)
	assert.Equal(t, int64(1<<30), a.VirtualSize)
	assert.Contains(t, out.String(), "from cache")

	// Another recipe is not a hit: it needs the tools.
	_, err = Build(context.Background(), unitRecipe, []string{"podman"}, WithCacheDir(cache), hide)
	assert.ErrorIs(t, err, ErrToolMissing)

	// --force rebuilds even when the entry is there.
	_, err = Build(context.Background(), unitRecipe, []string{"runc"}, WithCacheDir(cache), WithForce(true), hide)
	assert.ErrorIs(t, err, ErrToolMissing)
	assert.DirExists(t, dir, "a failed forced build keeps the old entry")
}

func TestBuildIgnoresIncompleteOrForeignEntries(t *testing.T) {
	hide := noTools(t)
	cache := t.TempDir()
	p := mustPlan(t, unitRecipe, nil, catalog.HostArch())

	dir := writeEntry(t, cache, p)
	require.NoError(t, os.Remove(filepath.Join(dir, DiskFile)))
	_, err := Load(cache, p.Key)
	assert.ErrorContains(t, err, "lacks disk.qcow2")
	_, err = Build(context.Background(), unitRecipe, nil, WithCacheDir(cache), hide)
	assert.ErrorIs(t, err, ErrToolMissing, "an incomplete entry is rebuilt")

	dir = writeEntry(t, cache, p)
	var m Meta
	b, _ := os.ReadFile(filepath.Join(dir, MetaFile))
	require.NoError(t, json.Unmarshal(b, &m))
	m.BuilderVersion = "0"
	b, _ = json.Marshal(m)
	require.NoError(t, os.WriteFile(filepath.Join(dir, MetaFile), b, 0o644))
	_, err = Load(cache, p.Key)
	assert.ErrorContains(t, err, "builder 0")

	_, err = Load(cache, "0000000000000000")
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

func TestBuildNamesEveryMissingToolAndItsPackage(t *testing.T) {
	hide := noTools(t)
	_, err := Build(context.Background(), unitRecipe, nil, WithCacheDir(t.TempDir()), hide)
	require.ErrorIs(t, err, ErrToolMissing)
	for _, want := range []string{
		"mmdebstrap (Debian package mmdebstrap)",
		"mkfs.ext4 (Debian package e2fsprogs)",
		"qemu-img (Debian package qemu-utils)",
		"apt-get install -y mmdebstrap e2fsprogs qemu-utils",
	} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestLookToolFallsBackToSbin(t *testing.T) {
	sbin := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(sbin, "mkfs.ext4"), []byte("#!/bin/sh\n"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(sbin, "not-executable"), []byte(""), 0o644))
	t.Setenv("PATH", t.TempDir())
	p, err := lookTool("mkfs.ext4", []string{sbin})
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(sbin, "mkfs.ext4"), p)
	_, err = lookTool("not-executable", []string{sbin})
	assert.Error(t, err)
}

func TestBuildRefusesAForeignArch(t *testing.T) {
	other := catalog.ArchAarch64
	if catalog.HostArch() == catalog.ArchAarch64 {
		other = catalog.ArchX8664
	}
	// No binfmt_misc (an empty directory): qemu-user cannot run the
	// guest's maintainer scripts.
	_, err := Build(context.Background(), unitRecipe, nil, WithCacheDir(t.TempDir()), WithArch(other),
		WithHost(hostcheck.Host{BinfmtDir: t.TempDir()}))
	require.ErrorIs(t, err, ErrForeignArch)
	assert.ErrorIs(t, err, hostcheck.ErrBinfmt)
	assert.ErrorContains(t, err, "building "+other+" image on a "+catalog.HostArch()+" host")
	assert.ErrorContains(t, err, "update-binfmts --enable qemu-"+other)
}

func TestBuildRejectsAnInvalidRecipeBeforeAnythingElse(t *testing.T) {
	cache := t.TempDir()
	_, err := Build(context.Background(), catalog.BuildRecipe{Suite: ""}, nil, WithCacheDir(cache))
	assert.ErrorIs(t, err, ErrInvalidRecipe)
	assert.NoDirExists(t, filepath.Join(cache, "images"))

	_, err = Build(context.Background(), unitRecipe, nil, WithCacheDir(""))
	assert.ErrorContains(t, err, "cache dir is empty")
	_, err = Build(context.Background(), unitRecipe, nil, WithHeadroom(1))
	assert.ErrorContains(t, err, "at least 64 MiB")
}

// A second builder of the same recipe waits for the first (here: a lock
// held by "another process") and then takes its result from the cache.
func TestConcurrentBuildWaitsForTheLockThenHitsTheCache(t *testing.T) {
	hide := noTools(t)
	cache := t.TempDir()
	p := mustPlan(t, unitRecipe, nil, catalog.HostArch())
	require.NoError(t, os.MkdirAll(filepath.Join(cache, "images"), 0o755))
	other := flock.New(EntryDir(cache, p.Key) + ".lock")
	locked, err := other.TryLock()
	require.NoError(t, err)
	require.True(t, locked)

	type result struct {
		a   *Artifact
		err error
	}
	done := make(chan result, 1)
	go func() {
		a, err := Build(context.Background(), unitRecipe, nil, WithCacheDir(cache), hide)
		done <- result{a, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("Build did not wait for the lock: %v %v", r.a, r.err)
	case <-time.After(600 * time.Millisecond):
	}
	writeEntry(t, cache, p) // the other builder finishes
	require.NoError(t, other.Unlock())
	select {
	case r := <-done:
		require.NoError(t, r.err)
		assert.Equal(t, StatusFromCache, r.a.Status)
	case <-time.After(10 * time.Second):
		t.Fatal("Build did not take the lock once it was free")
	}

	// Waiting for the lock is cancellable.
	locked, err = other.TryLock()
	require.NoError(t, err)
	require.True(t, locked)
	defer other.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = Build(ctx, unitRecipe, nil, WithCacheDir(cache), hide)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestMmdebstrapArgs(t *testing.T) {
	p := mustPlan(t, catalog.BuildRecipe{Suite: "trixie", Components: []string{"main", "contrib"}, Packages: []string{"containerd"}}, nil, catalog.ArchX8664)
	args := MmdebstrapArgs(p, "/cache/images/.tmp-x/rootfs")
	assert.Equal(t, []string{"trixie", "/cache/images/.tmp-x/rootfs", DefaultMirror}, args[len(args)-3:])
	assert.Contains(t, args, "--mode=root")
	assert.Contains(t, args, "--variant=minbase")
	assert.Contains(t, args, "--format=directory")
	assert.Contains(t, args, "--architectures=amd64")
	assert.Contains(t, args, "--components=contrib,main")
	assert.Contains(t, args, "--include="+strings.Join(p.Packages, ","))
	assert.Contains(t, args, "--dpkgopt=path-exclude=/usr/share/doc/*")
	assert.Contains(t, args, "--dpkgopt=path-include=/usr/share/doc/*/copyright")
	assert.Contains(t, args, `--customize-hook=chroot "$1" systemctl enable systemd-networkd.service`)
}

func TestMkfsAndConvertArgs(t *testing.T) {
	assert.Equal(t, []string{"-q", "-F", "-t", "ext4", "-L", "root", "-b", "4096", "-N", "65536",
		"-d", "/r", "/d.raw", "1024M"}, MkfsArgs("/r", "/d.raw", 1<<30, 1000))
	// Many files: inodes follow the file count.
	assert.Contains(t, MkfsArgs("/r", "/d.raw", 1<<30, 100000), "216384")

	assert.Equal(t, []string{"convert", "-f", "raw", "-O", "qcow2", "a.raw", "b.qcow2"}, ConvertArgs("a.raw", "b.qcow2", false))
	assert.Equal(t, []string{"convert", "-f", "raw", "-O", "qcow2", "-c", "-o", "compression_type=zstd", "a.raw", "b.qcow2"},
		ConvertArgs("a.raw", "b.qcow2", true))
}

func TestFilesystemSize(t *testing.T) {
	assert.Equal(t, int64(1536<<20), FilesystemSize(400<<20, DefaultHeadroom)) // 400+80+1024 = 1504 → 1536
	assert.Equal(t, int64(64<<20), FilesystemSize(0, 64<<20))
	assert.Zero(t, FilesystemSize(1000<<20, DefaultHeadroom)%(64<<20))
}

func TestDiskUsage(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(root, "small"), []byte("x"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "big"), make([]byte, 5000), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(root, "dir"), 0o755))
	require.NoError(t, os.Symlink("small", filepath.Join(root, "dir/short-link")))
	require.NoError(t, os.Symlink(strings.Repeat("x", 80), filepath.Join(root, "dir/long-link")))
	used, files, err := diskUsage(root)
	require.NoError(t, err)
	assert.Equal(t, int64(6), files)
	// root dir + dir: 2 blocks; small: 1; big: 2; long link: 1.
	assert.Equal(t, int64(6*4096), used)
}

func TestTailWriterStreamsLinesAndKeepsTheTail(t *testing.T) {
	var out bytes.Buffer
	w := &tailWriter{out: &out, max: 2}
	_, _ = w.Write([]byte("I: one\nI: tw"))
	_, _ = w.Write([]byte("o\r\n\nI: three\nno newline"))
	w.flush()
	assert.Equal(t, "I: one\nI: two\nI: three\nno newline\n", out.String())
	assert.Equal(t, "I: three\nno newline", w.String())
}

func TestParseDpkgQuery(t *testing.T) {
	pkgs := parseDpkgQuery([]byte("base-files\t13.8\tamd64\ncloud-init\t25.1.4-1\tall\n\nbroken line\n"))
	assert.Equal(t, []InstalledPackage{{"base-files", "13.8", "amd64"}, {"cloud-init", "25.1.4-1", "all"}}, pkgs)
}

func TestRemoveBuildDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".tmp-key-1")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "rootfs/etc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rootfs/etc/x"), nil, 0o644))
	require.NoError(t, removeBuildDir(dir))
	assert.NoDirExists(t, dir)

	mounts, err := mountsUnder("/proc")
	require.NoError(t, err)
	assert.Contains(t, mounts, "/proc", "mountinfo is read")
	assert.Equal(t, "/a b", unescapeMount(`/a\040b`))
}

func TestRemoveStaleBuildDirs(t *testing.T) {
	images := t.TempDir()
	stale := filepath.Join(images, ".tmp-k1-123")
	other := filepath.Join(images, ".tmp-k2-456")
	require.NoError(t, os.MkdirAll(filepath.Join(stale, "rootfs"), 0o755))
	require.NoError(t, os.MkdirAll(other, 0o755))
	removeStale(images, "k1", testLogger())
	assert.NoDirExists(t, stale)
	assert.DirExists(t, other, "another key's build may be running")
}

func TestHumanBytes(t *testing.T) {
	assert.Equal(t, "512 B", HumanBytes(512))
	assert.Equal(t, "1.5 GiB", HumanBytes(3<<29))
	assert.Equal(t, "414.8 MiB", HumanBytes(434962432))
}

func TestErrorsAreDistinct(t *testing.T) {
	for _, e := range []error{ErrForeignArch, ErrInvalidRecipe, ErrNeedRoot} {
		assert.False(t, errors.Is(e, ErrToolMissing))
	}
}

func testLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
