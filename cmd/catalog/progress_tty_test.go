package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework"
	"github.com/guestcatalog/guestcatalog/framework/machine"
)

const renderHelperEnv = "GUESTCATALOG_TEST_RENDER_HELPER"

// TestRenderHelper is the process the terminal test runs in a tmux pane: a
// renderer on the pane's terminal fed a fake boot whose ssh phase is 16 s
// without a single event (the status line must tick on its own).
func TestRenderHelper(t *testing.T) {
	if os.Getenv(renderHelperEnv) != "1" {
		t.Skip("run by TestTTYStatusLineChanges")
	}
	require.True(t, isTerminal(os.Stdout), "stdout is the pane's terminal")
	r := newRenderer(os.Stdout, nil, true, false, false)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	ev := func(kind, phase string, d time.Duration) {
		r.Event(machine.Event{Template: "debian-13-docker", Kind: kind, Phase: phase, Result: map[bool]string{true: machine.ResultOK}[kind == machine.EventEnd], Elapsed: d})
	}
	ev(machine.EventStart, framework.PhaseImage, 0)
	time.Sleep(2 * time.Second)
	ev(machine.EventEnd, framework.PhaseImage, 2*time.Second)
	ev(machine.EventStart, machine.PhaseSSH, 0)
	time.Sleep(16 * time.Second)
	ev(machine.EventEnd, machine.PhaseSSH, 16*time.Second)
	ev(machine.EventStart, machine.PhaseCloudInit, 0)
	time.Sleep(3 * time.Second)
	ev(machine.EventEnd, machine.PhaseCloudInit, 3*time.Second)
	r.Done("debian-13-docker")
	cancel()
	<-done
	fmt.Println("PASS debian-13-docker")
}

// On a real terminal (a tmux pane, captured every second) the bottom line
// changes at least every 10 s from start to verdict. The captures are kept
// in $ARTIFACTS/tty-progress (else the test's temp dir).
func TestTTYStatusLineChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("integration tier: a tmux session for ~25 s")
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux not installed")
	}
	dir := t.TempDir()
	if a := os.Getenv("ARTIFACTS"); a != "" {
		dir = filepath.Join(a, "tty-progress")
		require.NoError(t, os.MkdirAll(dir, 0o755))
	}
	session := fmt.Sprintf("gc-tty-%d", os.Getpid())
	cmdline := fmt.Sprintf("%s=1 %s -test.run '^TestRenderHelper$' -test.v; echo EXIT=$?; sleep 30", renderHelperEnv, os.Args[0])
	require.NoError(t, exec.Command("tmux", "new-session", "-d", "-s", session, "-x", "150", "-y", "20", cmdline).Run())
	t.Cleanup(func() { _ = exec.Command("tmux", "kill-session", "-t", session).Run() })

	var bottoms []string
	var times []time.Time
	deadline := time.Now().Add(90 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		out, err := exec.Command("tmux", "capture-pane", "-p", "-t", session).Output()
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("capture-%03d.txt", i)), out, 0o644))
		screen := strings.TrimRight(string(out), "\n ")
		lines := strings.Split(screen, "\n")
		bottoms = append(bottoms, lines[len(lines)-1])
		times = append(times, time.Now())
		if strings.Contains(screen, "EXIT=") {
			require.Contains(t, screen, "EXIT=0", screen)
			break
		}
		time.Sleep(time.Second)
	}
	require.Contains(t, strings.Join(bottoms, "\n"), "[debian-13-docker] ssh", "the status line showed the ssh phase")
	last := times[0]
	for i := 1; i < len(bottoms); i++ {
		if bottoms[i] != bottoms[i-1] {
			last = times[i]
		}
		require.Less(t, times[i].Sub(last), 10*time.Second, "the bottom line stood still for 10 s (captures in %s): %q", dir, bottoms[i])
	}
}
