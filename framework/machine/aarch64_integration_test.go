package machine

import (
	"context"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/exec"
	"github.com/guestcatalog/guestcatalog/framework/image"
	"github.com/guestcatalog/guestcatalog/framework/intervals"
)

// TestIntegrationBootDebianAarch64 boots the locally built arm64 Debian 13
// image (debian-13-containerd's, which `make test-e2e-aarch64` verifies
// too, so the two share one cached build) by direct kernel boot on QEMU's
// virt machine under TCG, provisions it through cloud-init and runs a
// command over SSH. On an x86_64 host the image is built through qemu-user
// and the guest is foreign: its intervals carry the foreign factor.
func TestIntegrationBootDebianAarch64(t *testing.T) {
	requireTool(t, "qemu-system-aarch64", "qemu-img", "mmdebstrap", "mkfs.ext4")
	if os.Getenv("GUESTCATALOG_TEST_AARCH64") != "1" {
		// Measured here: the arm64 image build (the guest's maintainer
		// scripts through qemu-user) ran for over 98 minutes on 2 loaded
		// cores, more than CI's whole budget. Opt in where it fits.
		t.Skip("SKIPPED: building the arm64 image through qemu-user takes longer than CI's budget on these hosts; set GUESTCATALOG_TEST_AARCH64=1 to run it")
	}
	cat, err := catalog.Load(context.Background())
	require.NoError(t, err)
	tmpl, err := cat.Resolve("debian-13-containerd")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Minute)
	defer cancel()
	a, err := image.Resolve(ctx, tmpl, catalog.ArchAarch64, image.WithOffline(), image.WithProgress(testWriter{t}), image.WithCacheDir(testCacheDir(t)))
	require.NoError(t, err)
	entry := a.Entry
	img := Image{Disk: a.Disk, Format: a.Format, Kernel: a.Kernel, Initrd: a.Initrd, Append: a.Append, Firmware: a.Firmware, Entry: &entry}
	assert.Contains(t, img.Append, "console=ttyAMA0")

	ivals, err := intervals.Load()
	require.NoError(t, err)
	m, err := Start(ctx, Config{Template: tmpl, Image: img, Arch: catalog.ArchAarch64, Accel: qemu.AccelAuto,
		Intervals: ivals, ArtifactsDir: artifactsDir(t), Logger: newTestLogger(t), SkipProbes: true})
	require.NoError(t, err)
	defer m.Close(context.Background())
	logPhases(t, m.Phases())
	if catalog.HostArch() != catalog.ArchAarch64 {
		assert.Equal(t, qemu.AccelTCG, m.Accelerator().Used, "a foreign guest cannot use KVM")
	}
	out, err := exec.Output(ctx, m.Runner(), "uname", "-m")
	require.NoError(t, err)
	assert.Equal(t, "aarch64", strings.TrimSpace(out))
	out, err = exec.Output(ctx, m.Runner(), "cat", ProvisionedMarker)
	require.NoError(t, err)
	assert.Equal(t, "ok", out)
	require.NoError(t, m.Close(ctx))
}
