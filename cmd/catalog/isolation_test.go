package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/config"
	"github.com/guestcatalog/guestcatalog/framework/image"
	"github.com/guestcatalog/guestcatalog/framework/instance"
	"github.com/guestcatalog/guestcatalog/framework/isolation"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
	"github.com/guestcatalog/guestcatalog/framework/qemu/qemutest"
)

// A strict template whose property does not hold exits 1; any other
// template's profile is only reported (exit 0). Every format prints one
// result per property; the guest's evidence is escaped.
func TestReportIsolation(t *testing.T) {
	ent := func(strict bool, st isolation.Status) isolationEntry {
		e := isolationEntry{Instance: "box", Template: "debian-13-sandbox", Strict: strict, Results: []isolation.Result{
			{Property: isolation.PropResourcesDisk, Status: st, Detail: "declared 10.00 GiB\x1b[2J\nPASS forged", Seconds: 61.2},
			{Property: isolation.PropSnapshotUnique, Status: isolation.Skipped, Detail: "the template has mounts"},
		}}
		if st == isolation.NotHeld {
			e.NotHeld = []string{isolation.PropResourcesDisk}
		}
		return e
	}
	var b bytes.Buffer
	err := reportIsolation(&b, outputTable, ent(true, isolation.NotHeld))
	assert.Equal(t, exitError{ExitFailed}, err, "strict and not held: exit 1")
	assert.Contains(t, b.String(), "not-held  resources/disk-fills-at-declared-size")
	assert.Contains(t, b.String(), "skipped   snapshot/resumes-differ-in-random")
	assert.Contains(t, b.String(), "FAIL: 1 properties do not hold")
	assert.NotContains(t, b.String(), "\x1b", "the guest's evidence is escaped")
	assert.NotContains(t, b.String(), "\nPASS", "one line per property")

	b.Reset()
	assert.NoError(t, reportIsolation(&b, outputTable, ent(false, isolation.NotHeld)), "not strict: reported only")
	assert.Contains(t, b.String(), "reported only")

	b.Reset()
	assert.NoError(t, reportIsolation(&b, outputTable, ent(true, isolation.Held)))
	assert.Contains(t, b.String(), "every checked property holds")

	b.Reset()
	err = reportIsolation(&b, outputJSON, ent(true, isolation.NotHeld))
	assert.Equal(t, exitError{ExitFailed}, err)
	var got isolationEntry
	require.NoError(t, json.Unmarshal(b.Bytes(), &got))
	assert.Equal(t, []string{isolation.PropResourcesDisk}, got.NotHeld)
	assert.Len(t, got.Results, 2)

	b.Reset()
	assert.NoError(t, reportIsolation(&b, outputYAML, ent(false, isolation.Held)))
	assert.Contains(t, b.String(), "notHeld: []")
}

func TestIsolationCmdRejectsUnknownSkip(t *testing.T) {
	_, errOut, code := runCLI(t, "isolation", "box", "--skip", "disk")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, errOut, "not a property")
}

// TestIntegrationIsolationOfInstance: catalog up, then catalog isolation
// against that instance (the heavy checks skipped: they are covered by
// framework/isolation's TestIntegrationInstanceProfile): one result per
// property in JSON, exit 0 for the nat template; the same instance judged
// as a strict template (a --catalog layer adding isolation: strict) exits 1
// on its open host loopback. Skips without a saved guest of
// debian-13-containerd (catalog verify --offline debian-containerd saves one).
func TestIntegrationIsolationOfInstance(t *testing.T) {
	qemutest.RequireTools(t, qemu.Binary(catalog.HostArch()), qemu.QemuImg)
	cfg, err := config.FromEnv(os.Environ())
	require.NoError(t, err)
	ctx := context.Background()
	cat, err := catalog.Load(ctx)
	require.NoError(t, err)
	tmpl, err := cat.Resolve("debian-13-containerd")
	require.NoError(t, err)
	img, err := image.Resolve(ctx, tmpl, cfg.Arch, image.WithOffline(), image.WithCacheDir(cfg.CacheDir))
	if err != nil {
		t.Skipf("no image of debian-13-containerd in %s: %v (run: catalog verify --offline debian-containerd)", cfg.CacheDir, err)
	}
	if _, err := instance.FindSaved(ctx, instance.SavedInput{CacheDir: cfg.CacheDir, Template: tmpl, Image: img, Arch: cfg.Arch}); errors.Is(err, instance.ErrNoSavedGuest) {
		t.Skipf("%v", err)
	}
	cache := []string{"--cache-dir", cfg.CacheDir}
	name := fmt.Sprintf("iso-test-%d", os.Getpid())
	out, errOut, code := runCLI(t, append([]string{"up", "--offline", "debian-13-containerd", "--name", name}, cache...)...)
	require.Equal(t, 0, code, "up: %s %s", out, errOut)
	t.Cleanup(func() { runCLI(t, append([]string{"down", name}, cache...)...) })

	heavy := []string{isolation.PropCredNoToken, isolation.PropResourcesDisk, isolation.PropSnapshotUnique, isolation.PropNetAfterFlush}
	args := append([]string{"isolation", name, "-o", "json"}, cache...)
	for _, p := range heavy {
		args = append(args, "--skip", p)
	}
	start := time.Now()
	out, errOut, code = runCLI(t, args...)
	t.Logf("isolation (heavy checks skipped) in %.1fs", time.Since(start).Seconds())
	require.Equal(t, 0, code, "a nat template's profile is only reported: %s %s", out, errOut)
	var got isolationEntry
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	assert.Equal(t, name, got.Instance)
	assert.False(t, got.Strict)
	assert.Len(t, got.Results, len(isolation.Properties()))
	assert.Contains(t, got.NotHeld, isolation.PropNetHostLoopback, "nat reaches the host's loopback")
	for _, r := range got.Results {
		if r.Property == isolation.PropNetGuestListeners {
			assert.Equal(t, isolation.Held, r.Status, "QEMU publishes only SSH: %s", r.Detail)
		}
	}

	// The same instance, its template declaring isolation: strict: exit 1.
	src, err := os.ReadFile("../../catalog/templates/debian-13-containerd.yaml")
	require.NoError(t, err)
	strict := filepath.Join(t.TempDir(), "strict.yaml")
	require.NoError(t, os.WriteFile(strict, append(src, []byte("\nisolation: strict\n")...), 0o644))
	out, errOut, code = runCLI(t, append([]string{"isolation", name, "--catalog", strict}, append(cache, skipArgs(heavy)...)...)...)
	assert.Equal(t, ExitFailed, code, "%s %s", out, errOut)
	assert.Regexp(t, `(?m)^not-held\s+network/host-loopback-unreachable`, out)
	assert.Contains(t, out, "FAIL:")
}

func skipArgs(props []string) []string {
	var a []string
	for _, p := range props {
		a = append(a, "--skip", p)
	}
	return a
}
