package hostcheck

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const registered = "enabled\ninterpreter %s\nflags: PF\noffset 0\nmagic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n"

// fakeHost is a binfmt_misc directory and an interpreter in a temp dir.
func fakeHost(t *testing.T, entry string) (Host, string) {
	t.Helper()
	dir := t.TempDir()
	bm := filepath.Join(dir, "binfmt_misc")
	require.NoError(t, os.MkdirAll(bm, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(bm, "register"), nil, 0o200))
	interp := filepath.Join(dir, "qemu-aarch64-static")
	require.NoError(t, os.WriteFile(interp, []byte("#!/bin/true\n"), 0o755))
	if entry != "" {
		require.NoError(t, os.WriteFile(filepath.Join(bm, "qemu-aarch64"), []byte(sprintf(entry, interp)), 0o644))
	}
	return Host{BinfmtDir: bm}, interp
}

func sprintf(f, interp string) string {
	if f == registered {
		return "enabled\ninterpreter " + interp + "\nflags: PF\n"
	}
	return f
}

func TestParseBinfmt(t *testing.T) {
	b := ParseBinfmt("qemu-aarch64", "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\noffset 0\n")
	assert.Equal(t, &Binfmt{Name: "qemu-aarch64", Enabled: true, Interpreter: "/usr/libexec/qemu-binfmt/aarch64-binfmt-P", Flags: "PF"}, b)
	assert.False(t, ParseBinfmt("x", "disabled\nflags: \n").Enabled)
}

func TestBinfmtReady(t *testing.T) {
	h, _ := fakeHost(t, registered)
	require.NoError(t, h.BinfmtReady(ArchAarch64))
	c := h.BinfmtCheck(ArchAarch64)
	assert.Equal(t, OK, c.Status)
	assert.Contains(t, c.Detail, "arm64 root filesystems")
}

func TestBinfmtReadyFailures(t *testing.T) {
	for _, tc := range []struct {
		name, entry string
		mutate      func(t *testing.T, h *Host, interp string)
		want        string
	}{
		{"not mounted", registered, func(t *testing.T, h *Host, _ string) {
			require.NoError(t, os.Remove(filepath.Join(h.BinfmtDir, "register")))
		}, "binfmt_misc is not mounted"},
		{"not registered", "", nil, "qemu-aarch64 is not registered"},
		{"disabled", "disabled\ninterpreter /x\nflags: PF\n", nil, "registered but disabled"},
		{"no F flag", "enabled\ninterpreter /x\nflags: P\n", nil, "without the F (fix-binary) flag"},
		{"interpreter gone", registered, func(t *testing.T, _ *Host, interp string) {
			require.NoError(t, os.Remove(interp))
		}, "interpreter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, interp := fakeHost(t, tc.entry)
			if tc.mutate != nil {
				tc.mutate(t, &h, interp)
			}
			err := h.BinfmtReady(ArchAarch64)
			require.ErrorIs(t, err, ErrBinfmt)
			assert.ErrorContains(t, err, tc.want)
			assert.ErrorContains(t, err, "fix: ")
			c := h.BinfmtCheck(ArchAarch64)
			assert.Equal(t, Fail, c.Status)
			assert.NotEmpty(t, c.Fix, "a failure says how to fix it")
			assert.NotContains(t, c.Detail, "fix:")
		})
	}
}

func notFound(string) (string, error) { return "", exec.ErrNotFound }

func TestForeignChecksMissing(t *testing.T) {
	h := Host{
		BinfmtDir: t.TempDir(),
		LookPath:  notFound,
		Stat:      func(string) (fs.FileInfo, error) { return nil, fs.ErrNotExist },
	}
	cs := h.Foreign(ArchAarch64, ArchX8664)
	require.Len(t, cs, 4)
	fixes := map[string]string{}
	for _, c := range cs {
		assert.Equal(t, Fail, c.Status, c.Name)
		fixes[c.Name] = c.Fix
	}
	assert.Equal(t, "apt-get install -y qemu-system-arm", fixes["emulator aarch64"])
	assert.Equal(t, "apt-get install -y qemu-efi-aarch64", fixes["firmware aarch64"])
	assert.Contains(t, fixes["binfmt qemu-aarch64"], "mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc")
	assert.Contains(t, fixes["binfmt qemu-aarch64"], "update-binfmts --enable qemu-aarch64")
	assert.Equal(t, "apt-get install -y arch-test", fixes["arch-test"])
}

func TestForeignNativeIsEmpty(t *testing.T) {
	assert.Empty(t, Host{LookPath: notFound}.Foreign(ArchX8664, ArchX8664))
}

func TestFirmwareUnknownArch(t *testing.T) {
	c := Host{}.Firmware("riscv64")
	assert.Equal(t, Fail, c.Status)
}

// TestThisHost reports what this machine has (informational; the
// integration tier requires the foreign-arch pieces).
func TestThisHost(t *testing.T) {
	if testing.Short() {
		t.Skip("reads the host")
	}
	for _, c := range (Host{}).Foreign(ArchAarch64, ArchX8664) {
		t.Logf("%s: %s %s %s", c.Name, c.Status, c.Detail, c.Fix)
		if os.Getenv("GUESTCATALOG_REQUIRE_TOOLS") == "1" && c.Status != OK {
			t.Errorf("%s: %s (fix: %s)", c.Name, c.Detail, c.Fix)
		}
	}
	if err := (Host{}).BinfmtReady(ArchAarch64); err != nil && !errors.Is(err, ErrBinfmt) {
		t.Fatalf("BinfmtReady error does not wrap ErrBinfmt: %v", err)
	}
}
