package instance

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/config"
	"github.com/guestcatalog/guestcatalog/framework/image"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
	"github.com/guestcatalog/guestcatalog/framework/qemu/qemutest"
)

// mountTemplate is the template whose saved guest the mount tests resume:
// its image has a kernel with 9p. `catalog up --offline debian-13-sandbox`
// provisions and saves it (verify does not: it boots a template with mounts
// fresh each time).
const mountTemplate = "debian-13-sandbox"

// savedGuestOf is savedGuest for another template: it skips when the
// template has no saved guest (or no image) in the cache.
func savedGuestOf(t testing.TB, name string) *fixture {
	t.Helper()
	qemutest.RequireTools(t, qemu.Binary(catalog.HostArch()), qemu.QemuImg)
	cfg, err := config.FromEnv(os.Environ())
	require.NoError(t, err)
	cfg.Offline = true
	ivs, err := cfg.Intervals()
	require.NoError(t, err)
	ctx := context.Background()
	cat, err := catalog.Load(ctx)
	require.NoError(t, err)
	tmpl, err := cat.Resolve(name)
	require.NoError(t, err)
	img, err := image.Resolve(ctx, tmpl, cfg.Arch, image.WithOffline(), image.WithCacheDir(cfg.CacheDir))
	if err != nil {
		t.Skipf("no image of %s in %s: %v (run: catalog up --offline %s)", name, cfg.CacheDir, err, name)
	}
	g, err := FindSaved(ctx, SavedInput{CacheDir: cfg.CacheDir, Template: tmpl, Image: img, Arch: cfg.Arch})
	if errors.Is(err, ErrNoSavedGuest) {
		t.Skipf("%v", err)
	}
	require.NoError(t, err)
	return &fixture{cfg: cfg, guest: g, ivs: ivs}
}

// up with four mounts — the template's two replaced by directories of the
// test (rw and ro: same devices, new host side) and two new shares (rw and
// ro: new devices, found by the guest's PCI rescan) — then: the guest's
// writes to the rw mounts appear on the host; the ro mounts serve the
// host's files and refuse writes, also after guest root remounts them
// read-write (QEMU's readonly=on; the host sees no file); the record lists
// the mounts; down leaves nothing.
func TestIntegrationUpMounts(t *testing.T) {
	f := savedGuestOf(t, mountTemplate)
	s := testStore(t)
	downAll(t, s)
	ctx := t.Context()

	ws, ref, out, extRef := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(ref, "README"), []byte("reference\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(extRef, "data"), []byte("extra\n"), 0o644))
	specs, err := ParseMounts([]string{ws + ":/workspace", ref + ":/reference:ro", out + ":/mnt/out", extRef + ":/mnt/ref:ro"})
	require.NoError(t, err)

	start := time.Now()
	inst, err := s.Up(ctx, UpInput{Guest: f.guest, Mounts: specs, Intervals: f.ivs})
	require.NoError(t, err)
	t.Logf("up with 4 mounts in %s, of which mounting (rescan, mount, checks) %s", time.Since(start).Round(time.Millisecond), inst.MountTook.Round(time.Millisecond))

	got, err := s.Get(inst.Name)
	require.NoError(t, err)
	realOf := func(p string) string { r, err := filepath.EvalSymlinks(p); require.NoError(t, err); return r }
	assert.Equal(t, []Mount{
		{HostPath: realOf(ws), GuestPath: "/workspace", Writable: true, Tag: "mount0", Source: MountFromFlag},
		{HostPath: realOf(ref), GuestPath: "/reference", Tag: "mount1", Source: MountFromFlag},
		{HostPath: realOf(out), GuestPath: "/mnt/out", Writable: true, Tag: "xmount0", Source: MountFromFlag},
		{HostPath: realOf(extRef), GuestPath: "/mnt/ref", Tag: "xmount1", Source: MountFromFlag},
	}, got.Mounts, "the record lists the mounts")

	exec := func(line string) (int, string) {
		t.Helper()
		var o bytes.Buffer
		code, err := got.Exec(ctx, []string{"sh", "-c", line}, Streams{Stdout: &o, Stderr: &o})
		require.NoError(t, err)
		return code, o.String()
	}

	// rw: the guest user writes, the host sees it.
	code, o := exec("echo from-guest > /workspace/a && echo two > /mnt/out/b && id -un")
	require.Equal(t, 0, code, o)
	user := strings.TrimSpace(o)
	b, err := os.ReadFile(filepath.Join(ws, "a"))
	require.NoError(t, err)
	assert.Equal(t, "from-guest\n", string(b))
	b, err = os.ReadFile(filepath.Join(out, "b"))
	require.NoError(t, err)
	assert.Equal(t, "two\n", string(b))
	// and the host's writes are seen by the guest at once (cache=none).
	require.NoError(t, os.WriteFile(filepath.Join(out, "c"), []byte("from-host\n"), 0o644))
	code, o = exec("cat /mnt/out/c")
	assert.Equal(t, 0, code)
	assert.Equal(t, "from-host\n", o)

	// ro: readable, not writable, not even by root after a remount rw.
	code, o = exec("cat /reference/README /mnt/ref/data")
	assert.Equal(t, 0, code)
	assert.Equal(t, "reference\nextra\n", o)
	for _, dir := range []string{"/reference", "/mnt/ref"} {
		code, o = exec("echo x > " + dir + "/planted")
		assert.NotEqual(t, 0, code, "%s: the guest user wrote into a ro mount: %s", dir, o)
		code, o = exec("sudo mount -o remount,rw " + dir + "; grep ' " + dir + " ' /proc/mounts; sudo sh -c 'echo x > " + dir + "/planted'")
		assert.NotEqual(t, 0, code, "%s: root wrote after remount rw: %s", dir, o)
		t.Logf("%s after remount rw: %s", dir, strings.TrimSpace(o))
	}
	assert.NoFileExists(t, filepath.Join(ref, "planted"))
	assert.NoFileExists(t, filepath.Join(extRef, "planted"))
	des, err := os.ReadDir(extRef)
	require.NoError(t, err)
	assert.Len(t, des, 1, "nothing appeared in the ro directory")

	code, o = exec("stat -c %U /workspace /mnt/out")
	assert.Equal(t, 0, code)
	assert.Equal(t, user+"\n"+user+"\n", o, "the rw mounts' roots belong to the guest user")

	res, err := s.Down(ctx, inst.Name, DownInput{Intervals: f.ivs, Force: true})
	require.NoError(t, err)
	assert.False(t, inst.QEMU.Alive())
	assert.NoDirExists(t, inst.Dir)
	t.Logf("down: %s in %s", res.How, res.Duration.Round(time.Millisecond))
}

// A guest whose kernel has no 9p (debian-containerd: Debian's cloud
// kernel) refuses a mount with ErrNo9p and up leaves nothing running.
func TestIntegrationUpMountNo9p(t *testing.T) {
	f := savedGuest(t)
	s := testStore(t)
	downAll(t, s)
	specs, err := ParseMounts([]string{t.TempDir() + ":/mnt/x"})
	require.NoError(t, err)
	_, err = s.Up(t.Context(), UpInput{Guest: f.guest, Mounts: specs, Intervals: f.ivs})
	require.ErrorIs(t, err, ErrNo9p)
	t.Logf("%v", err)
	assert.Contains(t, err.Error(), "debian-13-sandbox")
	assertNothingLeft(t, s.Dir())
}

// run --rm with a rw mount: what the command writes stays on the host,
// everything else is removed.
func TestIntegrationRunRmMount(t *testing.T) {
	f := savedGuestOf(t, mountTemplate)
	root := shortRunRoot(t)
	dir := t.TempDir()
	specs, err := ParseMounts([]string{dir + ":/mnt/job"})
	require.NoError(t, err)
	var tm RunTimings
	var o bytes.Buffer
	code, err := Run(t.Context(), RunInput{Guest: f.guest, Args: []string{"sh", "-c", "uname -r > /mnt/job/result"},
		Streams: Streams{Stdout: &o, Stderr: &o}, Mounts: specs, RunRoot: root, Intervals: f.ivs, Timings: &tm})
	require.NoError(t, err, o.String())
	assert.Equal(t, 0, code, o.String())
	b, err := os.ReadFile(filepath.Join(dir, "result"))
	require.NoError(t, err)
	assert.NotEmpty(t, strings.TrimSpace(string(b)))
	t.Logf("mounted in %s; command started after %s, removed %s", tm.Mount, tm.Command, tm.Removed)
	assertNothingLeft(t, root)
}
