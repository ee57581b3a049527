package machine

import (
	"context"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
)

func TestStartValidatesConfig(t *testing.T) {
	ctx := context.Background()
	tmpl := &catalog.Template{Name: "debian-13", User: &catalog.User{Name: "guest"}}
	_, err := Start(ctx, Config{})
	assert.ErrorContains(t, err, "Config.Template is nil")
	_, err = Start(ctx, Config{Template: tmpl})
	assert.ErrorContains(t, err, "Config.Image.Disk is empty")
	_, err = Start(ctx, Config{Template: tmpl, Image: Image{Disk: "x"}, Accel: "hvf"})
	assert.ErrorContains(t, err, `Config.Accel "hvf"`)
	_, err = Start(ctx, Config{Template: &catalog.Template{Name: "x"}, Image: Image{Disk: "x"}})
	assert.ErrorContains(t, err, "template has no user")
}

// TestPrepareFailureCleansUp: a Start that fails in prepare (the base image
// does not exist) returns a *PhaseError naming the phase, removes its run
// dir.
func TestPrepareFailureCleansUp(t *testing.T) {
	tmpl := &catalog.Template{Name: "debian-13", Kind: catalog.KindTemplate, User: &catalog.User{Name: "guest"},
		Distro: &catalog.Distro{Name: "debian", Family: catalog.FamilyDebian}}
	artifacts := t.TempDir()
	m, err := Start(context.Background(), Config{Template: tmpl, Image: Image{Disk: "/nonexistent/disk.qcow2"}, Accel: qemu.AccelTCG, ArtifactsDir: artifacts})
	var pe *PhaseError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, PhasePrepare, pe.Phase)
	assert.Equal(t, "debian-13", pe.Template)
	assert.Equal(t, artifacts, pe.ArtifactsDir)
	require.NotNil(t, m)
	assert.NoDirExists(t, m.RunDir())
	assert.FileExists(t, artifacts+"/"+ArtifactPhases)
	require.NoError(t, m.Close(context.Background()), "Close after a failed Start is a no-op")
}
