package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/config"
	"github.com/guestcatalog/guestcatalog/framework/image"
	"github.com/guestcatalog/guestcatalog/framework/instance"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
	"github.com/guestcatalog/guestcatalog/framework/qemu/qemutest"
)

// requireSavedGuest skips unless the cache of the environment holds the
// template's saved guest (an up would otherwise provision for minutes).
func requireSavedGuest(t *testing.T, name string) config.Config {
	t.Helper()
	qemutest.RequireTools(t, qemu.Binary(catalog.HostArch()), qemu.QemuImg)
	cfg, err := config.FromEnv(os.Environ())
	require.NoError(t, err)
	ctx := context.Background()
	cat, err := catalog.Load(ctx)
	require.NoError(t, err)
	tmpl, err := cat.Resolve(name)
	require.NoError(t, err)
	img, err := image.Resolve(ctx, tmpl, cfg.Arch, image.WithOffline(), image.WithCacheDir(cfg.CacheDir))
	if err != nil {
		t.Skipf("no image of %s in %s: %v (run: catalog verify --offline %s)", name, cfg.CacheDir, err, name)
	}
	_, err = instance.FindSaved(ctx, instance.SavedInput{CacheDir: cfg.CacheDir, Template: tmpl, Image: img, Arch: cfg.Arch})
	if errors.Is(err, instance.ErrNoSavedGuest) {
		t.Skipf("%v", err)
	}
	require.NoError(t, err)
	return cfg
}

// Ctrl-C while `catalog up` starts its detached guest: the CLI exits 130
// within a second, and neither the guest's QEMU (which has its own session
// and no parent-death signal, so that it can outlive the CLI) nor the
// instance's directory is left, nor the sandbox's egress-proxy helper.
// A first, uninterrupted up measures how long the start runs after QEMU
// appears (S); SIGINT then comes at 0, S/4, S/2 and 3S/4: as the migration
// stream loads, and later while SSH, the mounts and the guest's setup run.
// At least two of them must interrupt the start, whatever the load. Each
// template needs its saved guest (`catalog verify --offline T`, or for the
// sandbox `catalog up`, saves it), or its case skips.
func TestUpInterruptedDuringStartLeavesNothing(t *testing.T) {
	bin := buildCatalog(t)
	for _, tmpl := range []string{"debian-containerd", "debian-sandbox"} {
		t.Run(tmpl, func(t *testing.T) { upInterrupted(t, bin, tmpl) })
	}
}

// startingUp is a `catalog up` whose QEMU has appeared.
type startingUp struct {
	cmd    *exec.Cmd
	exited chan error
	dir    string
	out    *bytes.Buffer
	seen   time.Time // when its QEMU was seen
}

func startUp(t *testing.T, bin string, cfg config.Config, tmpl string) *startingUp {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "sigint-" + hex.EncodeToString(b[:])
	env := testEnv("GUESTCATALOG_CACHE=" + cfg.CacheDir)
	u := &startingUp{dir: filepath.Join(cfg.CacheDir, "instances", name), out: &bytes.Buffer{}, exited: make(chan error, 1)}
	t.Cleanup(func() {
		for _, pid := range qemutest.Processes(u.dir, false) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		down := exec.Command(bin, "down", "--force", name)
		down.Env = env
		_ = down.Run()
		_ = os.RemoveAll(u.dir)
	})
	u.cmd = exec.Command(bin, "up", "--offline", "--name", name, tmpl)
	u.cmd.Env = env
	u.cmd.Stdout, u.cmd.Stderr = u.out, u.out
	require.NoError(t, u.cmd.Start())
	go func() { u.exited <- u.cmd.Wait() }()
	deadline := time.Now().Add(time.Minute)
	for len(qemutest.Processes(u.dir, true)) == 0 {
		select {
		case err := <-u.exited:
			t.Fatalf("up ended before its QEMU was seen: %v\n%s", err, u.out)
		default:
		}
		require.True(t, time.Now().Before(deadline), "no QEMU for %s after a minute\n%s", u.dir, u.out)
		time.Sleep(10 * time.Millisecond)
	}
	u.seen = time.Now()
	return u
}

func upInterrupted(t *testing.T, bin, tmpl string) {
	cfg := requireSavedGuest(t, tmpl)
	first := startUp(t, bin, cfg, tmpl)
	select {
	case err := <-first.exited:
		require.NoError(t, err, "an uninterrupted up\n%s", first.out)
	case <-time.After(5 * time.Minute):
		t.Fatalf("up not done after 5 minutes\n%s", first.out)
	}
	span := time.Since(first.seen)
	t.Logf("uninterrupted: up returned %s after its QEMU appeared", span.Round(time.Millisecond))
	interrupted := 0
	for _, q := range []int{0, 1, 2, 3} {
		delay := span * time.Duration(q) / 4
		t.Run(fmt.Sprintf("at %d of 4", q), func(t *testing.T) {
			u := startUp(t, bin, cfg, tmpl)
			time.Sleep(delay)
			sent := time.Now()
			if err := u.cmd.Process.Signal(os.Interrupt); err != nil {
				// Already reaped: up was done first (the cleanup downs it).
				require.ErrorIs(t, err, os.ErrProcessDone)
				<-u.exited
				t.Skipf("up finished before SIGINT at %s; output:\n%s", delay, u.out)
			}
			var err error
			select {
			case err = <-u.exited:
			case <-time.After(10 * time.Second):
				t.Fatalf("up still running 10 s after SIGINT\n%s", u.out)
			}
			took := time.Since(sent)
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Skipf("up finished before SIGINT at %s (%v); output:\n%s", delay, err, u.out)
			}
			interrupted++
			assert.Equal(t, ExitInterrupted, ee.ExitCode(), u.out.String())
			assert.Less(t, took, time.Second, "exit after SIGINT")
			assert.Eventually(t, func() bool { return len(qemutest.Processes(u.dir, false)) == 0 }, 2*time.Second, 20*time.Millisecond,
				"the instance's QEMU or proxy helper outlived an interrupted up\n%s", u.out)
			assert.NoDirExists(t, u.dir, "the instance's directory outlived an interrupted up")
			t.Logf("SIGINT %s after QEMU appeared: exit %d after %s", delay.Round(time.Millisecond), ee.ExitCode(), took.Round(time.Millisecond))
		})
	}
	assert.GreaterOrEqual(t, interrupted, 2, "SIGINT came after the start in too many cases: nothing was proven")
}
