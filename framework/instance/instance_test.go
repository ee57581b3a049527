package instance

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/image"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
)

func TestValidName(t *testing.T) {
	for _, ok := range []string{"a", "debian-containerd", "x1", "a-b-2", strings.Repeat("a", 32)} {
		assert.NoError(t, ValidName(ok), ok)
	}
	for _, bad := range []string{"", "-a", "a-", "A", "a_b", "a.b", "../x", "a/b", "a b", strings.Repeat("a", 33)} {
		assert.Error(t, ValidName(bad), "%q", bad)
	}
}

func TestDefaultName(t *testing.T) {
	assert.Equal(t, "debian-containerd", defaultName("debian-containerd"))
	assert.Equal(t, "my-t-1", defaultName("My_T.1"))
	assert.Equal(t, "guest", defaultName("___"))
	assert.LessOrEqual(t, len(defaultName(strings.Repeat("ab", 40))), 28)
	assert.NoError(t, ValidName(defaultName(strings.Repeat("a-", 40))))
}

func TestParseLocation(t *testing.T) {
	cases := []struct {
		in   string
		want Location
	}{
		{"box:/etc/hostname", Location{Instance: "box", Path: "/etc/hostname"}},
		{"box:rel/file", Location{Instance: "box", Path: "rel/file"}},
		{"/tmp/a", Location{Path: "/tmp/a"}},
		{"./a:b", Location{Path: "./a:b"}},
		{"dir/a:b", Location{Path: "dir/a:b"}},
		{"plain", Location{Path: "plain"}},
	}
	for _, c := range cases {
		got, err := ParseLocation(c.in)
		require.NoError(t, err, c.in)
		assert.Equal(t, c.want, got, c.in)
	}
	for _, bad := range []string{"", "Box:/x", "box:", "a_b:/x"} {
		_, err := ParseLocation(bad)
		assert.Error(t, err, "%q", bad)
	}
}

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	return s
}

func self(t *testing.T) Proc {
	t.Helper()
	p, err := Self()
	require.NoError(t, err)
	return p
}

// A name is reserved once: of 20 concurrent reservations exactly one
// wins and the others get ErrExists.
func TestReserveIsExclusive(t *testing.T) {
	s := newStore(t)
	rec := Record{Template: "t", Creator: self(t), BootID: qemu.BootID()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, lost := 0, 0
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.reserve("box", rec)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				won++
			} else {
				assert.ErrorIs(t, err, ErrExists)
				lost++
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 1, won)
	assert.Equal(t, 19, lost)
	r, err := ReadRecord(s.Path("box"))
	require.NoError(t, err)
	assert.Equal(t, StateStarting, r.State)
	// No reservation leftovers.
	des, _ := os.ReadDir(s.Dir())
	assert.Len(t, des, 1)

	name, _, err := s.reserveFree("box", rec)
	require.NoError(t, err)
	assert.Equal(t, "box-2", name)
	_, err = s.reserve("Bad", rec)
	assert.Error(t, err)
}

// startSleeper is a real process standing in for QEMU in the liveness
// tests (the integration tests use QEMU itself).
func startSleeper(t *testing.T) (Proc, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	st, err := qemu.ProcessStart(cmd.Process.Pid)
	require.NoError(t, err)
	return Proc{PID: cmd.Process.Pid, Start: st}, cmd
}

func TestStatus(t *testing.T) {
	p, cmd := startSleeper(t)
	boot := qemu.BootID()
	running := Record{State: StateRunning, QEMU: p, BootID: boot}
	assert.Equal(t, Running, running.Status())

	reused := running
	reused.QEMU.Start++ // same pid, another process
	assert.Equal(t, Dead, reused.Status())

	otherBoot := running
	otherBoot.BootID = "not-this-boot"
	assert.Equal(t, Dead, otherBoot.Status())

	starting := Record{State: StateStarting, Creator: self(t), BootID: boot}
	assert.Equal(t, Starting, starting.Status())
	starting.Creator = p
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	assert.Equal(t, Dead, starting.Status(), "creator gone")
	assert.Equal(t, Dead, running.Status(), "qemu gone")
}

func writeInstance(t *testing.T, s *Store, r Record) string {
	t.Helper()
	dir := s.Path(r.Name)
	require.NoError(t, os.MkdirAll(dir, 0o700))
	r.Format = Format
	require.NoError(t, writeRecord(dir, &r))
	return dir
}

// gc removes an instance whose QEMU is dead and one whose starter died
// (killing the QEMU it had started), and keeps a live one, one being
// started, and a directory that is not provably an instance.
func TestGc(t *testing.T) {
	s := newStore(t)
	boot := qemu.BootID()
	live, _ := startSleeper(t)
	dead, deadCmd := startSleeper(t)
	orphan, orphanCmd := startSleeper(t)
	starter, starterCmd := startSleeper(t)

	writeInstance(t, s, Record{Name: "live", State: StateRunning, QEMU: live, BootID: boot})
	writeInstance(t, s, Record{Name: "dead", State: StateRunning, QEMU: dead, BootID: boot})
	writeInstance(t, s, Record{Name: "starting", State: StateStarting, Creator: self(t), BootID: boot})
	odir := writeInstance(t, s, Record{Name: "orphaned", State: StateStarting, Creator: starter, BootID: boot})
	// The orphan's QEMU is named by its run dir's owner record.
	rd, err := qemu.NewRunDir(odir, "i-orphaned")
	require.NoError(t, err)
	ob, err := os.ReadFile(rd.File(qemu.OwnerFile))
	require.NoError(t, err)
	ob = []byte(strings.Replace(string(ob), `"pid"`, `"qemuPID": `+itoa(orphan.PID)+`, "qemuStart": `+utoa(orphan.Start)+`, "pid"`, 1))
	require.NoError(t, os.WriteFile(rd.File(qemu.OwnerFile), ob, 0o600))
	require.NoError(t, os.MkdirAll(s.Path("stranger"), 0o700))

	require.NoError(t, deadCmd.Process.Kill())
	_ = deadCmd.Wait()
	require.NoError(t, starterCmd.Process.Kill())
	_ = starterCmd.Wait()

	dry, err := s.Gc(context.Background(), true)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"dead", "orphaned"}, names(dry.Removed))
	assert.DirExists(t, s.Path("dead"))

	res, err := s.Gc(context.Background(), false)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"dead", "orphaned"}, names(res.Removed))
	assert.ElementsMatch(t, []string{"live", "starting", "stranger"}, names(res.Kept))
	assert.NoDirExists(t, s.Path("dead"))
	assert.NoDirExists(t, s.Path("orphaned"))
	assert.DirExists(t, s.Path("live"))
	assert.True(t, live.Alive())
	// The orphan's QEMU was killed.
	_ = orphanCmd.Wait()
	assert.False(t, orphan.Alive())
}

func names(es []GcEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name)
	}
	return out
}

func itoa(n int) string    { return strconv.Itoa(n) }
func utoa(n uint64) string { return strconv.FormatUint(n, 10) }

// Down of an instance whose QEMU is gone just removes it; one being
// started by a live process is refused; an unknown name is ErrNotFound.
func TestDownDeadAndBusy(t *testing.T) {
	s := newStore(t)
	boot := qemu.BootID()
	p, cmd := startSleeper(t)
	writeInstance(t, s, Record{Name: "gone", State: StateRunning, QEMU: p, BootID: boot})
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	res, err := s.Down(context.Background(), "gone", DownInput{})
	require.NoError(t, err)
	assert.Equal(t, "gone", res.How)
	assert.NoDirExists(t, s.Path("gone"))

	writeInstance(t, s, Record{Name: "busy", State: StateStarting, Creator: self(t), BootID: boot})
	_, err = s.Down(context.Background(), "busy", DownInput{})
	assert.ErrorIs(t, err, ErrBusy)
	assert.DirExists(t, s.Path("busy"))

	_, err = s.Down(context.Background(), "nosuch", DownInput{})
	assert.ErrorIs(t, err, ErrNotFound)
}

// Without a QMP socket to answer, Down escalates to SIGKILL of exactly the
// recorded process.
func TestDownEscalatesToKill(t *testing.T) {
	s := newStore(t)
	p, cmd := startSleeper(t)
	writeInstance(t, s, Record{Name: "mute", State: StateRunning, QEMU: p, BootID: qemu.BootID(),
		QMPSocket: filepath.Join(t.TempDir(), "none.sock"), Accel: "kvm"})
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	res, err := s.Down(context.Background(), "mute", DownInput{Force: true})
	require.NoError(t, err)
	assert.Equal(t, "kill", res.How)
	err = <-done
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee))
	assert.Equal(t, syscall.SIGKILL, ee.Sys().(syscall.WaitStatus).Signal())
	assert.NoDirExists(t, s.Path("mute"))
}

func TestListSkipsForeignDirs(t *testing.T) {
	s := newStore(t)
	writeInstance(t, s, Record{Name: "b", State: StateRunning})
	writeInstance(t, s, Record{Name: "a", State: StateRunning})
	require.NoError(t, os.MkdirAll(s.Path("c"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(s.Path("c"), RecordFile), []byte(`{"format":"other"}`), 0o600))
	l, err := s.List()
	require.NoError(t, err)
	require.Len(t, l, 2)
	assert.Equal(t, "a", l[0].Name)
}

// A template whose only saved guest is of an older format is not resumed:
// FindSaved says which entry it found and why it is not used, instead of
// a bare "no saved guest".
func TestFindSavedReportsAnOutdatedSavedGuest(t *testing.T) {
	cat, err := catalog.Load(context.Background())
	require.NoError(t, err)
	tmpl, err := cat.Resolve("debian-containerd")
	require.NoError(t, err)
	cache := t.TempDir()
	img := &image.Artifact{Disk: filepath.Join(cache, "base.qcow2"), Format: "qcow2", Source: "build:trixie", Digest: "sha256:00"}
	_, err = FindSaved(context.Background(), SavedInput{CacheDir: cache, Template: tmpl, Image: img, Arch: "x86_64"})
	require.ErrorIs(t, err, ErrNoSavedGuest)
	assert.NotContains(t, err.Error(), "format")

	old := filepath.Join(cache, "provisioned", "0123456789abcdef01234567")
	require.NoError(t, os.MkdirAll(old, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(old, "meta.json"),
		[]byte(`{"format":"guestcatalog-provisioned-v2","key":"0123456789abcdef01234567","template":"`+tmpl.Name+`"}`), 0o644))
	_, err = FindSaved(context.Background(), SavedInput{CacheDir: cache, Template: tmpl, Image: img, Arch: "x86_64"})
	require.ErrorIs(t, err, ErrNoSavedGuest)
	assert.Contains(t, err.Error(), "the saved guest "+old+" is in format guestcatalog-provisioned-v2, which this version does not resume (guestcatalog-provisioned-v3)")
	assert.DirExists(t, old, "left for cache prune (another version may still use it)")
}
