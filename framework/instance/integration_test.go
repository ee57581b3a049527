package instance

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/config"
	"github.com/guestcatalog/guestcatalog/framework/image"
	"github.com/guestcatalog/guestcatalog/framework/intervals"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
	"github.com/guestcatalog/guestcatalog/framework/qemu/qemutest"
)

// testTemplate is the template whose saved guest the integration tests
// resume: the first `catalog verify --offline debian-containerd` (or
// `catalog up`) provisions and saves it.
const testTemplate = "debian-containerd"

type fixture struct {
	cfg   config.Config
	guest *Guest
	ivs   *intervals.Set
}

// savedGuest finds the test template's saved guest; without QEMU (or with
// -short) the test skips, or fails under GUESTCATALOG_REQUIRE_TOOLS=1; without
// a saved guest it skips saying how to make one (that is not a missing tool).
func savedGuest(t testing.TB) *fixture {
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
	tmpl, err := cat.Resolve(testTemplate)
	require.NoError(t, err)
	img, err := image.Resolve(ctx, tmpl, cfg.Arch, image.WithOffline(), image.WithCacheDir(cfg.CacheDir))
	if err != nil {
		t.Skipf("no image of %s in %s: %v (run: catalog verify --offline %s)", testTemplate, cfg.CacheDir, err, testTemplate)
	}
	g, err := FindSaved(ctx, SavedInput{CacheDir: cfg.CacheDir, Template: tmpl, Image: img, Arch: cfg.Arch})
	if errors.Is(err, ErrNoSavedGuest) {
		t.Skipf("%v", err)
	}
	require.NoError(t, err)
	return &fixture{cfg: cfg, guest: g, ivs: ivs}
}

// testStore is a store of its own, with a short path: the QMP socket of an
// instance lives in its directory (108-byte limit).
func testStore(t testing.TB) *Store {
	t.Helper()
	d, err := os.MkdirTemp("", "gci")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(d) })
	s, err := Open(d)
	require.NoError(t, err)
	return s
}

// downAll stops whatever a failed test left running.
func downAll(t testing.TB, s *Store) {
	t.Cleanup(func() {
		l, _ := s.List()
		for _, i := range l {
			_, _ = s.Down(context.Background(), i.Name, DownInput{Force: true})
		}
	})
}

// up → list → exec (stdout, stderr, stdin, exit code) → cp both ways →
// down; QEMU keeps running between calls without anyone supervising it,
// and nothing is left afterwards.
func TestIntegrationUpExecCpDown(t *testing.T) {
	f := savedGuest(t)
	s := testStore(t)
	downAll(t, s)
	ctx := t.Context()

	start := time.Now()
	inst, err := s.Up(ctx, UpInput{Guest: f.guest, Intervals: f.ivs})
	require.NoError(t, err)
	t.Logf("up in %s: %s on %s (%s)", time.Since(start).Round(time.Millisecond), inst.Name, inst.SSH.Addr, inst.Accel)
	assert.Equal(t, defaultName(f.guest.Template.Name), inst.Name)
	sid, err := syscall.Getpgid(inst.QEMU.PID)
	require.NoError(t, err)
	assert.Equal(t, inst.QEMU.PID, sid, "qemu leads its own group (detached)")

	l, err := s.List()
	require.NoError(t, err)
	require.Len(t, l, 1)
	assert.Equal(t, Running, l[0].Status())
	assert.Equal(t, f.guest.Template.Name, l[0].Template)

	got, err := s.Get(inst.Name)
	require.NoError(t, err)
	var out, errb bytes.Buffer
	code, err := got.Exec(ctx, []string{"sh", "-c", "cat; echo to-stderr >&2; exit 3"},
		Streams{Stdin: strings.NewReader("from-stdin\n"), Stdout: &out, Stderr: &errb})
	require.NoError(t, err)
	assert.Equal(t, 3, code)
	assert.Equal(t, "from-stdin\n", out.String())
	assert.Equal(t, "to-stderr\n", errb.String())

	// Arguments reach the guest as words, not as a shell line.
	out.Reset()
	code, err = got.Exec(ctx, []string{"printf", "%s|", "a b", "$HOME", "it's"}, Streams{Stdout: &out})
	require.NoError(t, err)
	assert.Equal(t, 0, code)
	assert.Equal(t, "a b|$HOME|it's|", out.String())

	// cp: host → guest (into a directory) → host.
	dir := t.TempDir()
	src := filepath.Join(dir, "payload.bin")
	payload := bytes.Repeat([]byte("guestcatalog\x00\xff"), 50000)
	require.NoError(t, os.WriteFile(src, payload, 0o640))
	require.NoError(t, got.CopyTo(ctx, src, "/tmp/"))
	out.Reset()
	code, err = got.Exec(ctx, []string{"sha256sum", "/tmp/payload.bin"}, Streams{Stdout: &out})
	require.NoError(t, err)
	require.Equal(t, 0, code)
	back := filepath.Join(dir, "back")
	require.NoError(t, os.Mkdir(back, 0o755))
	require.NoError(t, got.CopyFrom(ctx, "/tmp/payload.bin", back))
	b, err := os.ReadFile(filepath.Join(back, "payload.bin"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(payload, b), "round trip changed the bytes")
	err = got.CopyFrom(ctx, "/nonexistent", filepath.Join(dir, "x"))
	require.Error(t, err)
	assert.NoFileExists(t, filepath.Join(dir, "x"), "a failed copy leaves no file")

	res, err := s.Down(ctx, inst.Name, DownInput{Intervals: f.ivs})
	require.NoError(t, err)
	t.Logf("down: %s in %s", res.How, res.Duration.Round(time.Millisecond))
	assert.False(t, inst.QEMU.Alive())
	assert.NoDirExists(t, inst.Dir)
}

// Two instances of one template run side by side (own names, disks, SSH
// ports); gc removes the one whose QEMU was killed and leaves the other.
func TestIntegrationTwoInstancesAndGc(t *testing.T) {
	f := savedGuest(t)
	s := testStore(t)
	downAll(t, s)
	ctx := t.Context()

	a, err := s.Up(ctx, UpInput{Guest: f.guest, Intervals: f.ivs})
	require.NoError(t, err)
	b, err := s.Up(ctx, UpInput{Guest: f.guest, Intervals: f.ivs})
	require.NoError(t, err)
	assert.Equal(t, a.Name+"-2", b.Name)
	assert.NotEqual(t, a.SSH.Addr, b.SSH.Addr)
	assert.NotEqual(t, a.RunDir, b.RunDir)
	_, err = s.Up(ctx, UpInput{Guest: f.guest, Name: a.Name, Intervals: f.ivs})
	assert.ErrorIs(t, err, ErrExists)

	// Each has its own disk: a file written in one is not in the other.
	code, err := a.Exec(ctx, []string{"sh", "-c", "echo a > ~/mine && sync"}, Streams{})
	require.NoError(t, err)
	require.Equal(t, 0, code)
	code, err = b.Exec(ctx, []string{"test", "-e", "mine"}, Streams{})
	require.NoError(t, err)
	assert.Equal(t, 1, code, "b sees a's file")

	require.NoError(t, syscall.Kill(a.QEMU.PID, syscall.SIGKILL))
	require.Eventually(t, func() bool { return !a.QEMU.Alive() }, 10*time.Second, 50*time.Millisecond)
	got, err := s.Get(a.Name)
	require.NoError(t, err)
	assert.Equal(t, Dead, got.Status())

	res, err := s.Gc(ctx, false)
	require.NoError(t, err)
	assert.Equal(t, []string{a.Name}, names(res.Removed))
	assert.Equal(t, []string{b.Name}, names(res.Kept))
	assert.NoDirExists(t, a.Dir)
	assert.True(t, b.QEMU.Alive())
	code, err = b.Exec(ctx, []string{"true"}, Streams{})
	require.NoError(t, err)
	assert.Equal(t, 0, code)

	_, err = s.Down(ctx, b.Name, DownInput{Intervals: f.ivs, Force: true})
	require.NoError(t, err)
	assert.False(t, b.QEMU.Alive())
}

// run: the command's output and exit code, and nothing left: no QEMU, no
// run dir, no logs.
func TestIntegrationRunRm(t *testing.T) {
	f := savedGuest(t)
	root := shortRunRoot(t)
	var out bytes.Buffer
	var tm RunTimings
	code, err := Run(t.Context(), RunInput{Guest: f.guest, Args: []string{"sh", "-c", "echo hi; exit 3"},
		Streams: Streams{Stdout: &out}, RunRoot: root, Intervals: f.ivs, Timings: &tm})
	require.NoError(t, err)
	assert.Equal(t, 3, code)
	assert.Equal(t, "hi\n", out.String())
	t.Logf("command started after %s, done %s, removed %s", tm.Command, tm.Done, tm.Removed)
	assertNothingLeft(t, root)
}

// Cancelling a run midway (Ctrl-C) leaves no QEMU and no directory.
func TestIntegrationRunRmCancelled(t *testing.T) {
	f := savedGuest(t)
	root := shortRunRoot(t)
	ctx, cancel := context.WithCancel(t.Context())
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, RunInput{Guest: f.guest, Args: []string{"sh", "-c", "echo started; sleep 600"},
			Streams: Streams{Stdout: &out}, RunRoot: root, Intervals: f.ivs})
		done <- err
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "started") }, 2*time.Minute, 50*time.Millisecond)
	pids := qemutest.Processes(root, true)
	require.NotEmpty(t, pids, "a qemu runs the guest")
	t0 := time.Now()
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after cancellation")
	}
	t.Logf("cancelled run cleaned up in %s", time.Since(t0).Round(time.Millisecond))
	assertNothingLeft(t, root)
}

// Cancelling an up once its (detached) QEMU runs, before the guest is
// ready, kills that QEMU and leaves nothing.
func TestIntegrationUpCancelledDuringStart(t *testing.T) {
	f := savedGuest(t)
	s := testStore(t)
	downAll(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := s.Up(ctx, UpInput{Guest: f.guest, Intervals: f.ivs})
		done <- err
	}()
	require.Eventually(t, func() bool { return len(qemutest.Processes(s.Dir(), true)) > 0 }, time.Minute, 20*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.Error(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("up did not return after cancellation")
	}
	assertNothingLeft(t, s.Dir())
}

func shortRunRoot(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "gcr")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func assertNothingLeft(t testing.TB, root string) {
	t.Helper()
	require.Eventually(t, func() bool { return len(qemutest.Processes(root, true)) == 0 }, 10*time.Second, 50*time.Millisecond, "qemu left running")
	des, err := os.ReadDir(root)
	require.NoError(t, err)
	assert.Empty(t, des, "run root not empty")
}
