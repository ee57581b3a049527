package console

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writer appends to a file in pieces, like QEMU writing a serial log.
type writer struct {
	t *testing.T
	f *os.File
}

func newWriter(t *testing.T, path string) *writer {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return &writer{t: t, f: f}
}

func (w *writer) write(s string) {
	_, err := w.f.WriteString(s)
	require.NoError(w.t, err)
}

// A realistic boot log, with CRLF line ends and colour codes as systemd
// and the kernel write them to a serial port.
var bootLog = []string{
	"SeaBIOS (version 1.16.2-debian-1.16.2-1)\r\n",
	"Probing EDD (edd=off to disable)... ok\r\n",
	"[    0.000000] Linux version 6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org)\r\n",
	"[    0.000000] Command line: console=ttyS0\r\n",
	"[    1.234567] Run /init as init process\r\n",
	"[    2.000000] systemd[1]: Detected virtualization qemu.\r\n",
	"\x1b[0;32m  OK  \x1b[0m] Reached target \x1b[0;1;39mMulti-User System\x1b[0m.\r\n",
	"\r\nDebian GNU/Linux 13 debian ttyS0\r\n\r\n",
	"debian login: ",
}

func collect(t *testing.T, ch <-chan Match, n int, timeout time.Duration) []Match {
	t.Helper()
	var got []Match
	deadline := time.After(timeout)
	for len(got) < n {
		select {
		case m, ok := <-ch:
			if !ok {
				return got
			}
			got = append(got, m)
		case <-deadline:
			t.Fatalf("timed out after %d of %d matches: %v", len(got), n, got)
		}
	}
	return got
}

func TestWatchFileWrittenConcurrently(t *testing.T) {
	path := filepath.Join(t.TempDir(), "serial.log")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// Watch before the file exists, as the machine does before QEMU starts.
	ch := WatchWith(ctx, path, []FollowOption{WithPoll(5 * time.Millisecond)}, AllPatterns()...)

	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(20 * time.Millisecond)
		w := newWriter(t, path)
		for _, chunk := range bootLog {
			// Split every chunk in two to cut lines mid-way.
			h := len(chunk) / 2
			w.write(chunk[:h])
			time.Sleep(3 * time.Millisecond)
			w.write(chunk[h:])
			time.Sleep(3 * time.Millisecond)
		}
	}()

	got := collect(t, ch, 5, 5*time.Second)
	<-done
	names := []string{}
	for _, m := range got {
		names = append(names, m.Pattern.Name)
	}
	// kernel matches twice (banner and the next printk line), then
	// userspace (initramfs and systemd), then the prompt.
	assert.Equal(t, []string{"kernel", "kernel", "userspace", "userspace", "login"}, names)
	assert.Equal(t, "[    0.000000] Linux version 6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org)", got[0].Line.Text)
	assert.Equal(t, 3, got[0].Line.Num)
	assert.Equal(t, "debian login: ", got[4].Line.Text)
	assert.True(t, got[4].Line.Partial)

	// Nothing more: the prompt is not matched again, even when its line
	// completes.
	w := newWriter(t, path)
	w.write("\r\n")
	select {
	case m := <-ch:
		t.Fatalf("unexpected match %v", m)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestFollowLinesOffsetsAndStop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "serial.log")
	require.NoError(t, os.WriteFile(path, []byte("one\r\n\x1b[1mtwo\x1b[0m\nthree"), 0o644))
	stop := make(chan struct{})
	close(stop)
	var lines []Line
	for l := range Follow(t.Context(), path, WithStop(stop)) {
		lines = append(lines, l)
	}
	require.NotEmpty(t, lines)
	var full []Line
	for _, l := range lines {
		if !l.Partial {
			full = append(full, l)
		}
	}
	require.Len(t, full, 3)
	assert.Equal(t, Line{Text: "one", Raw: "one", Num: 1, Offset: 0}, strip(full[0]))
	assert.Equal(t, Line{Text: "two", Raw: "\x1b[1mtwo\x1b[0m", Num: 2, Offset: 5}, strip(full[1]))
	assert.Equal(t, Line{Text: "three", Raw: "three", Num: 3, Offset: 17}, strip(full[2]))
}

func strip(l Line) Line { l.At = time.Time{}; return l }

func TestFollowRestartsOnReplacedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "serial.log")
	require.NoError(t, os.WriteFile(path, []byte("first run line\n"), 0o644))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	lines := Follow(ctx, path, WithPoll(5*time.Millisecond))
	l := <-lines
	assert.Equal(t, "first run line", l.Text)

	// As the accelerator fallback does: keep the old log aside, start a
	// fresh one at the same path.
	require.NoError(t, os.Rename(path, filepath.Join(dir, "serial-kvm.log")))
	require.NoError(t, os.WriteFile(path, []byte("second\n"), 0o644))
	select {
	case l = <-lines:
		assert.Equal(t, "second", l.Text)
		assert.Equal(t, int64(0), l.Offset)
		assert.Equal(t, 2, l.Num)
	case <-time.After(3 * time.Second):
		t.Fatal("replaced file not followed")
	}
}

func TestFollowCancel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "never.log")
	ctx, cancel := context.WithCancel(t.Context())
	lines := Follow(ctx, path)
	cancel()
	select {
	case _, ok := <-lines:
		assert.False(t, ok)
	case <-time.After(2 * time.Second):
		t.Fatal("Follow did not stop on cancel")
	}
}

func TestWaitFindsWantedPattern(t *testing.T) {
	path := filepath.Join(t.TempDir(), "serial.log")
	done := make(chan struct{})
	defer func() { <-done }()
	go func() {
		defer close(done)
		w := newWriter(t, path)
		for _, c := range bootLog[:6] {
			w.write(c)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	m, err := Wait(t.Context(), WaitInput{Path: path, Want: []Pattern{Userspace()}, Options: []FollowOption{WithPoll(5 * time.Millisecond)}})
	require.NoError(t, err)
	assert.Equal(t, "userspace", m.Pattern.Name)
	assert.Equal(t, "[    1.234567] Run /init as init process", m.Line.Text)
}

func TestWaitReportsFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "serial.log")
	require.NoError(t, os.WriteFile(path, []byte(
		"[    0.000000] Linux version 6.1.0\n"+
			"[    1.100000] VFS: Cannot open root device \"vda1\"\n"+
			"[    1.200000] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\n"), 0o644))
	_, err := Wait(t.Context(), WaitInput{Path: path, Want: []Pattern{Userspace()}})
	var fe *FailureError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "kernel-panic", fe.Match.Pattern.Name)
	assert.Equal(t, `guest console shows kernel-panic: "[    1.200000] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"`, err.Error())

	// The accelerator probe treats a panic as progress: no failures.
	m, err := Wait(t.Context(), WaitInput{Path: path, Want: []Pattern{KernelPanic()}, Fail: []Pattern{}})
	require.NoError(t, err)
	assert.Equal(t, 3, m.Line.Num)
}

func TestWaitTimeoutNamesLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "serial.log")
	require.NoError(t, os.WriteFile(path, []byte("SeaBIOS (version 1.16.2)\nProbing EDD (edd=off to disable)... ok\n\n"), 0o644))
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := Wait(ctx, WaitInput{Path: path, Want: []Pattern{KernelStarted()}})
	var we *WaitError
	require.ErrorAs(t, err, &we)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, "Probing EDD (edd=off to disable)... ok", we.LastLine)
	assert.Equal(t, 3, we.Lines)
	assert.Equal(t, `waiting for kernel on the console: context deadline exceeded (last line: "Probing EDD (edd=off to disable)... ok")`, err.Error())
}

func TestWaitStopped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "serial.log")
	stop := make(chan struct{})
	w := newWriter(t, path)
	go func() {
		w.write("booting\n")
		time.Sleep(30 * time.Millisecond)
		close(stop)
	}()
	_, err := Wait(t.Context(), WaitInput{Path: path, Want: []Pattern{LoginPrompt()}, Options: []FollowOption{WithStop(stop), WithPoll(5 * time.Millisecond)}})
	require.ErrorIs(t, err, ErrStopped)
	assert.Contains(t, err.Error(), `last line: "booting"`)

	_, err = Wait(t.Context(), WaitInput{Path: path})
	assert.EqualError(t, err, "console.Wait: WaitInput.Want is empty")
}

func TestPatterns(t *testing.T) {
	cases := []struct {
		line string
		want string // pattern name, "" for none
	}{
		{"SeaBIOS (version 1.16.2-debian-1.16.2-1)", ""},
		{"Probing EDD (edd=off to disable)... ok", ""},
		{"Booting from Hard Disk...", ""},
		{"[    0.000000] Linux version 6.1.0-56-cloud-amd64", "kernel"},
		{"EFI stub: Booting Linux Kernel...", "kernel"},
		{"[    3.141592] Run /sbin/init as init process", "userspace"},
		{"[    3.5] systemd[1]: Hostname set to <debian>.", "userspace"},
		{"Welcome to Debian GNU/Linux 13 (trixie)!", "userspace"},
		{"debian login: ", "login"},
		{"Login: ", ""},
		{"[   60.0] cloud-init[612]: Cloud-init v. 25.1.4 finished at Thu, 26 Nov 2026 17:00:00 +0000. Datasource DataSourceNoCloud.  Up 60.12 seconds", "cloud-init-finished"},
		{"[    9.0] Kernel panic - not syncing: Attempted to kill init!", "kernel-panic"},
		{"[    9.0] Oops: 0000 [#1] PREEMPT SMP NOPTI", "oops"},
		{"[    9.0] BUG: kernel NULL pointer dereference, address: 0000000000000000", "oops"},
		{"[    9.0] BUG: scheduling while atomic: swapper/0/0/0x00000002", "oops"},
		{"[   40.0] watchdog: BUG: soft lockup - CPU#1 stuck for 23s! [swapper/1:0]", "soft-lockup"},
		{"[   40.0] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:", "soft-lockup"},
		{"You are in emergency mode. After logging in, type \"journalctl -xb\"", "emergency-mode"},
		{"Give root password for maintenance", "emergency-mode"},
		{"Gave up waiting for root file system device.  Common problems:", "root-not-found"},
		{"ALERT!  /dev/vda1 does not exist.  Dropping to a shell!", "root-not-found"},
		{"[  100.0] Out of memory: Killed process 1234 (dockerd) total-vm:1GB", "oom-kill"},
		{"[  OK  ] Started ssh.service - OpenBSD Secure Shell server.", ""},
	}
	for _, c := range cases {
		p, ok := Classify(Clean(c.line), AllPatterns()...)
		if c.want == "" {
			assert.False(t, ok, "%q matched %s", c.line, p.Name)
			continue
		}
		if assert.True(t, ok, "%q matched nothing", c.line) {
			assert.Equal(t, c.want, p.Name, c.line)
		}
	}
}

func TestClean(t *testing.T) {
	assert.Equal(t, "[  OK  ] Reached target Multi-User System.",
		Clean("[\x1b[0;32m  OK  \x1b[0m] Reached target \x1b[0;1;39mMulti-User System\x1b[0m.\r"))
	assert.Equal(t, "a\tb", Clean("a\tb\x00\x07"))
	assert.Equal(t, "clear", Clean("\x1b[2J\x1b[Hclear\x1bc"))
}

func TestTail(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "serial.log")
	var b strings.Builder
	for i := 1; i <= 5000; i++ {
		fmt.Fprintf(&b, "line %d\r\n", i)
	}
	b.WriteString("\n\n")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	lines, err := Tail(path, 3)
	require.NoError(t, err)
	assert.Equal(t, []string{"line 4998", "line 4999", "line 5000"}, lines)

	lines, err = Tail(path, 10000)
	require.NoError(t, err)
	assert.Len(t, lines, 5000)
	assert.Equal(t, "line 1", lines[0])

	lines, err = Tail(filepath.Join(dir, "missing"), 3)
	require.NoError(t, err)
	assert.Empty(t, lines)

	require.NoError(t, os.WriteFile(path, []byte("x\nlast words   \n\n"), 0o644))
	assert.Equal(t, "last words", LastLine(path))
	assert.Equal(t, "", LastLine(filepath.Join(dir, "missing")))

	_, err = Tail(dir, 3)
	assert.True(t, err != nil && !errors.Is(err, os.ErrNotExist))
}
