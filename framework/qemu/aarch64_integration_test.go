package qemu

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework/qemu/qemutest"
)

// TestIntegrationAarch64UEFIBoots starts the aarch64 machine the way a
// downloaded (UEFI) aarch64 image boots: `-machine virt` under TCG, AAVMF's
// code read-only and a per-guest qcow2 copy of its variable store on
// pflash, the serial console on the PL011 (ttyAMA0). The firmware's banner
// on the console proves the argv; on an x86_64 host the guest is foreign
// (translated by TCG). The direct kernel boot of locally built arm64
// images is proven end to end by `make test-e2e-aarch64`.
func TestIntegrationAarch64UEFIBoots(t *testing.T) {
	qemutest.RequireTools(t, Binary(ArchAarch64), QemuImg)
	qemutest.RequireFiles(t, "apt-get install qemu-efi-aarch64", AAVMFCode, AAVMFVars)
	vars := filepath.Join(t.TempDir(), "efivars.qcow2")
	require.NoError(t, CreateUEFIVars(t.Context(), ArchAarch64, "", vars))
	spec := Spec{Name: "aavmf", Arch: ArchAarch64, Accel: AccelTCG, CPUs: 1, MemoryBytes: 512 << 20,
		FirmwareVars: vars, Diskless: true, NoNetwork: true}
	argv, err := Cmdline(Spec{Name: spec.Name, Arch: spec.Arch, Accel: spec.Accel, FirmwareVars: vars, Diskless: true, NoNetwork: true, QMPSocket: "/q"})
	require.NoError(t, err)
	t.Logf("argv: %s", strings.Join(argv, " "))
	start := time.Now()
	inst, err := Start(t.Context(), spec, WithRunRoot(testRoot(t)))
	require.NoError(t, err)
	defer inst.Shutdown(t.Context(), 0)
	m := waitConsole(t, inst, `UEFI firmware`, 3*time.Minute)
	t.Logf("AAVMF banner after %s: %s", time.Since(start).Round(100*time.Millisecond), m.Line.Text)
	assert.Contains(t, argv, "virt,gic-version=max")
	assert.NotContains(t, strings.Join(argv, " "), "vmgenid", "no vmgenid on aarch64 virt")
}
