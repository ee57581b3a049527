package machine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework/console"
)

// fakeBoot is a console file written by the test plus a fake "QEMU exited"
// channel, watched exactly like a real boot.
type fakeBoot struct {
	t       *testing.T
	path    string
	f       *os.File
	mon     *monitor
	exited  chan struct{}
	watched <-chan struct{}
	eng     *engine
}

func newFakeBoot(t *testing.T) *fakeBoot {
	t.Helper()
	path := filepath.Join(t.TempDir(), "serial.log")
	f, err := os.Create(path)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	fb := &fakeBoot{t: t, path: path, f: f, mon: newMonitor(), exited: make(chan struct{})}
	fb.watched = watchConsole(ctx, path, fb.exited, fb.mon, nil)
	fb.eng = newEngine(time.Now(), fb.mon, nil)
	fb.eng.bootStart = fb.eng.origin
	return fb
}

func (fb *fakeBoot) write(lines ...string) {
	// Called from goroutines too: a write after the test ended is ignored.
	for _, l := range lines {
		if _, err := fmt.Fprintln(fb.f, l); err != nil {
			return
		}
	}
}

func (fb *fakeBoot) exit(err error, stderr string) {
	fb.mon.Exited(err, stderr)
	close(fb.exited)
}

func okPhase(name string) phase {
	return phase{name: name, timeout: 5 * time.Second, run: func(ctx context.Context) (string, error) { return "done", nil }}
}

// runAll is how Start runs its readiness phases: in order, stop at the first failure.
func runAll(ctx context.Context, e *engine, phases ...phase) error {
	for _, p := range phases {
		if err := e.run(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

func TestPhasesRunInOrderWithTimings(t *testing.T) {
	fb := newFakeBoot(t)
	go func() {
		time.Sleep(100 * time.Millisecond)
		fb.write("SeaBIOS (version 1.16.2-debian-1.16.2-1)", "Probing EDD (edd=off to disable)... ok")
		time.Sleep(100 * time.Millisecond)
		fb.write("[    0.000000] Linux version 6.12.43+deb13-cloud-amd64 (debian-kernel@lists.debian.org)")
		time.Sleep(100 * time.Millisecond)
		fb.write("[    2.100000] Run /init as init process", "Begin: Mounting root file system ... done.")
		time.Sleep(100 * time.Millisecond)
		fb.write("[    3.5] systemd[1]: Started Journal Service.")
	}()
	var updates int
	fb.eng.onUpdate = func([]PhaseTiming) { updates++ }
	err := runAll(context.Background(), fb.eng,
		phase{name: PhaseKernel, timeout: 5 * time.Second, run: consolePhase(fb.mon, console.KernelStarted().Name)},
		phase{name: PhaseUserspace, timeout: 5 * time.Second, run: consolePhase(fb.mon, initStarted().Name)},
		okPhase(PhaseSSH),
	)
	require.NoError(t, err)
	tm := fb.eng.Timings()
	require.Len(t, tm, 3)
	assert.Equal(t, []string{PhaseKernel, PhaseUserspace, PhaseSSH}, []string{tm[0].Name, tm[1].Name, tm[2].Name})
	for i, p := range tm {
		assert.Equal(t, ResultOK, p.Result, p.Name)
		if i > 0 {
			assert.GreaterOrEqual(t, p.Start, tm[i-1].Start+tm[i-1].Duration, "phase %s starts after %s ends", p.Name, tm[i-1].Name)
		}
	}
	assert.Contains(t, tm[0].Detail, "Linux version 6.12")
	assert.NotContains(t, tm[0].Detail, "SeaBIOS", "firmware output is not the kernel")
	assert.Contains(t, tm[1].Detail, "systemd[1]: Started Journal Service", "the initramfs's /init is not the system's init")
	assert.GreaterOrEqual(t, tm[0].Duration, 150*time.Millisecond)
	assert.Equal(t, 3, updates)

	b, err := json.Marshal(tm)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"name":"kernel"`)
	assert.Contains(t, string(b), `"duration_s":`)
	var back []PhaseTiming
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, tm[1].Name, back[1].Name)
	assert.InDelta(t, tm[1].Duration.Seconds(), back[1].Duration.Seconds(), 0.002)
}

func TestPhaseTimeoutStopsTheSequence(t *testing.T) {
	fb := newFakeBoot(t)
	fb.write("[    0.000000] Linux version 6.12")
	ran := false
	start := time.Now()
	err := runAll(context.Background(), fb.eng,
		phase{name: PhaseKernel, timeout: 2 * time.Second, run: consolePhase(fb.mon, console.KernelStarted().Name)},
		phase{name: PhaseUserspace, timeout: 300 * time.Millisecond, hint: "check root=", run: consolePhase(fb.mon, initStarted().Name)},
		phase{name: PhaseSSH, run: func(context.Context) (string, error) { ran = true; return "", nil }},
	)
	require.Error(t, err)
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.ErrorIs(t, err, ErrPhaseTimeout)
	var pf *phaseFailure
	require.ErrorAs(t, err, &pf)
	assert.Equal(t, PhaseUserspace, pf.phase)
	assert.Equal(t, "check root=", pf.hint)
	assert.False(t, ran, "no phase runs after a failure")
	tm := fb.eng.Timings()
	require.Len(t, tm, 2)
	assert.Equal(t, ResultOK, tm[0].Result)
	assert.Equal(t, ResultTimeout, tm[1].Result)
	assert.Equal(t, 300*time.Millisecond, tm[1].Timeout)
	assert.InDelta(t, 0.3, tm[1].Duration.Seconds(), 0.2)
}

// TestPhaseDeadlineCountsFromBootStart: boot phases share QEMU's start as
// their origin (intervals say "counted from QEMU's start").
func TestPhaseDeadlineCountsFromBootStart(t *testing.T) {
	fb := newFakeBoot(t)
	fb.eng.bootStart = time.Now().Add(-time.Second)
	err := fb.eng.run(context.Background(), phase{
		name: PhaseSSH, deadline: fb.eng.bootStart.Add(1200 * time.Millisecond),
		run: func(ctx context.Context) (string, error) { <-ctx.Done(); return "", context.Cause(ctx) },
	})
	require.ErrorIs(t, err, ErrPhaseTimeout)
	assert.Contains(t, err.Error(), "within 1s of QEMU's start")
	tm := fb.eng.Timings()
	assert.Less(t, tm[0].Duration, 700*time.Millisecond)
}

func TestQEMUExitFailsFast(t *testing.T) {
	fb := newFakeBoot(t)
	fb.write("[    0.000000] Linux version 6.12")
	go func() {
		time.Sleep(200 * time.Millisecond)
		fb.exit(errors.New("exit status 1"), "qemu-system-x86_64: -drive file=x: Could not open 'x': No such file or directory")
	}()
	start := time.Now()
	err := runAll(context.Background(), fb.eng,
		phase{name: PhaseKernel, timeout: time.Minute, run: consolePhase(fb.mon, console.KernelStarted().Name)},
		phase{name: PhaseUserspace, timeout: time.Minute, run: consolePhase(fb.mon, initStarted().Name)},
	)
	require.Error(t, err)
	assert.Less(t, time.Since(start), 3*time.Second, "no waiting out the minute")
	assert.ErrorIs(t, err, ErrQEMUExited)
	assert.Contains(t, err.Error(), "Could not open 'x'")
	tm := fb.eng.Timings()
	require.Len(t, tm, 2)
	assert.Equal(t, ResultAborted, tm[1].Result)

	// Any later phase is aborted at once too.
	err = fb.eng.run(context.Background(), phase{name: PhaseSSH, timeout: time.Minute, run: func(ctx context.Context) (string, error) {
		<-ctx.Done()
		return "", ctx.Err()
	}})
	assert.ErrorIs(t, err, ErrQEMUExited)
}

func TestConsoleFailureAbortsPhase(t *testing.T) {
	for _, tc := range []struct{ line, pattern string }{
		{"[    2.400000] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)", "kernel-panic"},
		{"You are in emergency mode. After logging in, type \"journalctl -xb\" to view", "emergency-mode"},
		{"[   80.1] Out of memory: Killed process 812 (cloud-init) total-vm:100kB", "oom-kill"},
	} {
		t.Run(tc.pattern, func(t *testing.T) {
			fb := newFakeBoot(t)
			fb.write("[    0.000000] Linux version 6.12", "[    1.0] Run /init as init process")
			go func() {
				time.Sleep(200 * time.Millisecond)
				fb.write(tc.line, "---[ end Kernel panic ]---")
			}()
			start := time.Now()
			err := runAll(context.Background(), fb.eng,
				phase{name: PhaseKernel, timeout: time.Minute, run: consolePhase(fb.mon, console.KernelStarted().Name)},
				phase{name: PhaseSSH, timeout: time.Minute, run: func(ctx context.Context) (string, error) {
					<-ctx.Done()
					return "", fmt.Errorf("dialing: %w", context.Cause(ctx))
				}},
			)
			require.Error(t, err)
			assert.Less(t, time.Since(start), 3*time.Second)
			assert.ErrorIs(t, err, ErrConsoleFailure)
			var cf *ConsoleFailureError
			require.ErrorAs(t, err, &cf)
			assert.Equal(t, tc.pattern, cf.Pattern)
			assert.Equal(t, tc.line, cf.Line)
			tm := fb.eng.Timings()
			assert.Equal(t, ResultAborted, tm[len(tm)-1].Result)
			assert.Equal(t, PhaseSSH, tm[len(tm)-1].Name)
		})
	}
}

// TestPanicThenExitReportsPanic: a guest that panics and then makes QEMU
// exit (panic=-1 + -no-reboot) is reported by its panic line.
func TestPanicThenExitReportsPanic(t *testing.T) {
	fb := newFakeBoot(t)
	fb.write("[    0.000000] Linux version 6.12")
	go func() {
		time.Sleep(100 * time.Millisecond)
		fb.write("[    2.4] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100")
		fb.exit(nil, "")
	}()
	err := runAll(context.Background(), fb.eng,
		phase{name: PhaseKernel, timeout: time.Minute, run: consolePhase(fb.mon, console.KernelStarted().Name)},
		phase{name: PhaseUserspace, timeout: time.Minute, run: consolePhase(fb.mon, initStarted().Name)},
	)
	require.ErrorIs(t, err, ErrConsoleFailure)
	assert.Contains(t, err.Error(), "Attempted to kill init")
}

func TestPhaseOwnErrorAndCancel(t *testing.T) {
	fb := newFakeBoot(t)
	boom := errors.New("cloud-init status: error")
	err := fb.eng.run(context.Background(), phase{name: PhaseCloudInit, run: func(context.Context) (string, error) { return "", boom }})
	require.ErrorIs(t, err, boom)
	assert.Equal(t, ResultFailed, fb.eng.Timings()[0].Result)

	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	err = fb.eng.run(ctx, phase{name: PhaseProbes, timeout: time.Minute, run: func(ctx context.Context) (string, error) {
		<-ctx.Done()
		return "", ctx.Err()
	}})
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, ResultAborted, fb.eng.Timings()[1].Result)
}

func TestPhaseErrorMessage(t *testing.T) {
	pe := &PhaseError{
		Phase: PhaseUserspace, Template: "debian-13",
		Err:          &ConsoleFailureError{Pattern: "kernel-panic", Line: "Kernel panic - not syncing: VFS"},
		ConsoleTail:  "line a\nKernel panic - not syncing: VFS\n",
		Hint:         "check root= in the kernel command line",
		ArtifactsDir: "/tmp/artifacts/debian-13", Elapsed: 2500 * time.Millisecond,
	}
	msg := pe.Error()
	for _, want := range []string{
		"template debian-13: phase userspace failed after 2.5s",
		"kernel-panic", "hint: check root=", "console (last lines):\n    line a\n    Kernel panic", "artifacts: /tmp/artifacts/debian-13",
	} {
		assert.Contains(t, msg, want)
	}
	assert.ErrorIs(t, pe, ErrConsoleFailure)
	assert.False(t, strings.HasSuffix(msg, "\n"))
}

// TestRootNotFoundFailsUserspace: the initramfs runs (/init) but cannot
// find root: the userspace phase fails with the initramfs's message.
func TestRootNotFoundFailsUserspace(t *testing.T) {
	fb := newFakeBoot(t)
	fb.write("[    0.000000] Linux version 6.12", "[    4.1] Run /init as init process", "Begin: Running /scripts/local-block ... done.")
	go func() {
		time.Sleep(300 * time.Millisecond)
		fb.write("Gave up waiting for root file system device.  Common problems:", "ALERT!  /dev/nonexistent does not exist.  Dropping to a shell!")
	}()
	err := runAll(context.Background(), fb.eng,
		phase{name: PhaseKernel, timeout: time.Minute, run: consolePhase(fb.mon, console.KernelStarted().Name)},
		phase{name: PhaseUserspace, timeout: time.Minute, run: consolePhase(fb.mon, initStarted().Name)},
	)
	var cf *ConsoleFailureError
	require.ErrorAs(t, err, &cf)
	assert.Equal(t, "root-not-found", cf.Pattern)
	assert.Contains(t, cf.Line, "Gave up waiting for root")
	tm := fb.eng.Timings()
	assert.Equal(t, PhaseUserspace, tm[len(tm)-1].Name)
}
