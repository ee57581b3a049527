package machine

import (
	"context"
	"errors"
	"os"
	osexec "os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework/qemu"
	"github.com/guestcatalog/guestcatalog/framework/sshx"
)

// A disk image named by the caller is inspected before QEMU sees it: a
// qcow2 naming a host file as its backing file or external data file, or
// an image in another format than declared, ends the start in the prepare
// phase, and no QEMU is started (on main the backed image was booted).
func TestStartRefusesUnsafeImagesBeforeQEMU(t *testing.T) {
	requireTool(t, "qemu-img")
	dir := t.TempDir()
	img := func(args ...string) {
		out, err := osexec.Command("qemu-img", args...).CombinedOutput()
		require.NoError(t, err, string(out))
	}
	backed := filepath.Join(dir, "backed.qcow2")
	img("create", "-q", "-f", "qcow2", "-b", "/etc/hostname", "-F", "raw", backed)
	withData := filepath.Join(dir, "with-data.qcow2")
	dataFile := filepath.Join(dir, "host-file.raw")
	img("create", "-q", "-f", "qcow2", "-o", "data_file="+dataFile, withData, "1M")
	raw := filepath.Join(dir, "plain.raw")
	img("create", "-q", "-f", "raw", raw, "1M")

	for _, tc := range []struct {
		name   string
		image  Image
		want   error
		detail string
	}{
		{"backing file", Image{Disk: backed, Format: "qcow2"}, qemu.ErrUnsafeImage, backed + `: backing-filename is "/etc/hostname"`},
		{"data file", Image{Disk: withData, Format: "qcow2"}, qemu.ErrUnsafeImage, withData + `: format-specific.data.data-file is "` + dataFile + `"`},
		{"format", Image{Disk: raw, Format: "qcow2"}, qemu.ErrFormatMismatch, raw + `: format is "raw", declared "qcow2"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			launched := false
			m, err := Start(ctx, Config{Template: debianTemplate(t), Image: tc.image, Accel: qemu.AccelTCG,
				ArtifactsDir: t.TempDir(), onLaunch: func(*Machine) { launched = true }})
			require.Error(t, err)
			assert.True(t, errors.Is(err, tc.want), "%v", err)
			var pe *PhaseError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, PhasePrepare, pe.Phase)
			assert.Contains(t, err.Error(), tc.detail)
			assert.False(t, launched, "QEMU never started")
			if m != nil {
				assert.Zero(t, m.QEMUPid())
			}
		})
	}
}

// A saved guest whose disk is not what was saved (it sits on another base
// image, or holds no such snapshot) fails its identity check before QEMU
// starts (on main it was copied and handed to QEMU as it was).
func TestResumeRefusesADiskThatIsNotTheSavedOne(t *testing.T) {
	requireTool(t, "qemu-img")
	dir := t.TempDir()
	img := func(args ...string) {
		out, err := osexec.Command("qemu-img", args...).CombinedOutput()
		require.NoError(t, err, string(out))
	}
	base := filepath.Join(dir, "base.qcow2")
	img("create", "-q", "-f", "qcow2", base, "16M")
	other := filepath.Join(dir, "other.qcow2")
	img("create", "-q", "-f", "qcow2", other, "16M")
	onOther := filepath.Join(dir, "on-other.qcow2")
	img("create", "-q", "-f", "qcow2", "-b", other, "-F", "qcow2", onOther)
	img("snapshot", "-c", "ready", onOther)
	seed := filepath.Join(dir, "seed.iso")
	require.NoError(t, os.WriteFile(seed, []byte("seed"), 0o600))
	client, err := sshx.NewKeyPair(filepath.Join(dir, "keys"), "c")
	require.NoError(t, err)
	host, err := sshx.NewHostKey("h")
	require.NoError(t, err)

	for _, tc := range []struct{ name, disk, detail string }{
		{"another base", onOther, `backing-filename is "` + other + `", want the base image ` + base},
	} {
		t.Run(tc.name, func(t *testing.T) {
			launched := false
			_, err := Start(context.Background(), Config{Template: debianTemplate(t), Image: Image{Disk: base, Format: "qcow2"},
				ArtifactsDir: t.TempDir(), onLaunch: func(*Machine) { launched = true },
				Resume: &Resume{Disk: tc.disk, State: seed, RAM: seed, Seed: seed, ClientKey: client.PrivateKeyPEM, HostKey: []byte(host.PrivatePEM), Accel: qemu.AccelTCG}})
			require.ErrorIs(t, err, ErrSavedGuestMismatch)
			assert.Contains(t, err.Error(), tc.detail)
			assert.False(t, launched)
			reason, identity, _ := ResumeFailure(err)
			assert.True(t, identity)
			assert.Contains(t, reason, "identity check failed: phase prepare: ")
		})
	}
}
