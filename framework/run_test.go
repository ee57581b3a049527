package framework

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework/config"
)

const ownTemplates = `apiVersion: guestcatalog.dev/v1alpha1
kind: Template
name: team-containerd
base: [images/debian-13, engines/containerd]
---
apiVersion: guestcatalog.dev/v1alpha1
kind: Template
name: team-thing
base: [images/debian-13]
engine:
  name: thing
provision:
  - mode: system
    script: "true"
`

func TestSelectedFromOwnCatalog(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "t.yaml"), []byte(ownTemplates), 0o644))
	cfg, err := config.FromEnv(config.Env{"HOME=" + t.TempDir(), config.EnvCatalog + "=" + dir})
	require.NoError(t, err)
	run, err := NewRun(context.Background(), cfg)
	require.NoError(t, err)

	got, err := run.Selected("containerd")
	require.NoError(t, err)
	assert.Equal(t, []string{"team-containerd"}, got, "the catalog's own templates, not the built-in ones")
	got, err = run.Selected(AnyOtherEngine)
	require.NoError(t, err)
	assert.Equal(t, []string{"team-thing"}, got)

	// Two runs share nothing.
	cfg2, err := config.FromEnv(config.Env{"HOME=" + t.TempDir()})
	require.NoError(t, err)
	run2, err := NewRun(context.Background(), cfg2)
	require.NoError(t, err)
	got, err = run2.Selected("containerd")
	require.NoError(t, err)
	assert.Contains(t, got, "debian-13-containerd")
	assert.NotContains(t, got, "team-containerd")
}

func TestNewRunRefusesBadConfig(t *testing.T) {
	cfg, err := config.FromEnv(config.Env{"HOME=" + t.TempDir()})
	require.NoError(t, err)
	cfg.Accel = "kmv"
	_, err = NewRun(context.Background(), cfg)
	require.ErrorContains(t, err, `accel: "kmv" is not one of auto, kvm, tcg (did you mean "kvm"?)`)
}

func TestIntervalsPerGuestAccelerator(t *testing.T) {
	cfg, err := config.FromEnv(config.Env{"HOME=" + t.TempDir()})
	require.NoError(t, err)
	run, err := NewRun(context.Background(), cfg)
	require.NoError(t, err)
	kvm := &Guest{accel: "kvm", ivals: run.Intervals()}
	tcg := &Guest{accel: "tcg", ivals: run.Intervals()}
	assert.Less(t, kvm.Interval("engine"), tcg.Interval("engine"), "each guest scales for its own accelerator")
	assert.Equal(t, tcg.Interval("engine"), run.Interval("engine"), "auto: the tree is bounded for the slowest")
}
