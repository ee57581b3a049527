package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

// processesNaming lists live processes whose command line holds s (QEMU,
// the egress-proxy helper); qemuOnly: QEMU's only.
func processesNaming(s string, qemuOnly bool) []int {
	var pids []int
	des, _ := os.ReadDir("/proc")
	for _, de := range des {
		pid, err := strconv.Atoi(de.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", de.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), s) ||
			qemuOnly && !strings.HasPrefix(filepath.Base(strings.SplitN(string(b), "\x00", 2)[0]), "qemu") {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", de.Name(), "stat")); err == nil && strings.Contains(string(st), ") Z ") {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// Ctrl-C while `catalog up` starts its detached guest: the CLI exits 130
// within a second, and neither the guest's QEMU (which has its own session
// and no parent-death signal, so that it can outlive the CLI) nor the
// instance's directory is left, nor the sandbox's egress-proxy helper.
// SIGINT comes at several points of the start: as soon as QEMU runs (the
// migration stream loading), and later while SSH, the mounts and the
// guest's setup run. Each template needs its saved guest (`catalog verify
// --offline T` saves it), or its case skips.
func TestUpInterruptedDuringStartLeavesNothing(t *testing.T) {
	bin := buildCatalog(t)
	for _, tmpl := range []string{"debian-containerd", "debian-sandbox"} {
		t.Run(tmpl, func(t *testing.T) { upInterrupted(t, bin, tmpl) })
	}
}

func upInterrupted(t *testing.T, bin, tmpl string) {
	cfg := requireSavedGuest(t, tmpl)
	for _, delay := range []time.Duration{0, 300 * time.Millisecond, 800 * time.Millisecond, 1500 * time.Millisecond, 2500 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			var b [4]byte
			_, _ = rand.Read(b[:])
			name := "sigint-" + hex.EncodeToString(b[:])
			dir := filepath.Join(cfg.CacheDir, "instances", name)
			t.Cleanup(func() {
				for _, pid := range processesNaming(dir, false) {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
				_ = exec.Command(bin, "down", "--force", name).Run()
				_ = os.RemoveAll(dir)
			})
			cmd := exec.Command(bin, "up", "--offline", "--name", name, tmpl)
			cmd.Env = testEnv("GUESTCATALOG_CACHE=" + cfg.CacheDir)
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stderr, &stderr
			require.NoError(t, cmd.Start())
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			deadline := time.Now().Add(time.Minute)
			for len(processesNaming(dir, true)) == 0 {
				select {
				case err := <-exited:
					t.Fatalf("up ended before its QEMU was seen: %v\n%s", err, stderr.String())
				default:
				}
				require.True(t, time.Now().Before(deadline), "no QEMU for %s after a minute\n%s", dir, stderr.String())
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(delay)
			sent := time.Now()
			require.NoError(t, cmd.Process.Signal(os.Interrupt))
			var err error
			select {
			case err = <-exited:
			case <-time.After(10 * time.Second):
				t.Fatalf("up still running 10 s after SIGINT\n%s", stderr.String())
			}
			took := time.Since(sent)
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				// The guest was ready before the signal: nothing to prove here.
				t.Skipf("up finished before SIGINT (%v); output:\n%s", err, stderr.String())
			}
			assert.Equal(t, ExitInterrupted, ee.ExitCode(), stderr.String())
			assert.Less(t, took, time.Second, "exit after SIGINT")
			assert.Eventually(t, func() bool { return len(processesNaming(dir, false)) == 0 }, 2*time.Second, 20*time.Millisecond,
				"the instance's QEMU or proxy helper outlived an interrupted up\n%s", stderr.String())
			assert.NoDirExists(t, dir, "the instance's directory outlived an interrupted up")
			t.Logf("SIGINT %s after QEMU appeared: exit %d after %s", delay, ee.ExitCode(), took.Round(time.Millisecond))
		})
	}
}
