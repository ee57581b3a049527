package main

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework/hostcheck"
	"github.com/guestcatalog/guestcatalog/framework/intervals"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
)

func TestPrintDoctor(t *testing.T) {
	rep := doctorReport{OK: false, Checks: []doctorCheck{
		{Name: "qemu", Status: doctorFail, Detail: "qemu-system-x86_64 not found", Fix: "apt-get install qemu-system-x86"},
		{Name: "accelerator", Status: doctorOK, Detail: "tcg: kvm unusable; tcg works\ntcg kernel probe ok in 2.2s"},
	}}
	var b bytes.Buffer
	require.NoError(t, printDoctor(&b, rep, outputTable))
	assert.Equal(t, ""+
		"FAIL  qemu         qemu-system-x86_64 not found\n"+
		"                   → apt-get install qemu-system-x86\n"+
		"OK    accelerator  tcg: kvm unusable; tcg works\n"+
		"                     tcg kernel probe ok in 2.2s\n"+
		"\nsomething essential is missing (FAIL above)\n", b.String())
}

func TestDoctorCommandNoProbe(t *testing.T) {
	out, _, code := runCLI(t, "doctor", "--no-probe", "--json", "--cache-dir", t.TempDir())
	var rep doctorReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	assert.Equal(t, rep.OK, code == 0, "exit code follows the verdict")
	names := map[string]doctorCheck{}
	for _, c := range rep.Checks {
		names[c.Name] = c
		assert.Contains(t, []string{doctorOK, doctorWarn, doctorFail}, c.Status, c.Name)
		if c.Status != doctorOK {
			assert.NotEmpty(t, c.Fix, "%s: a problem comes with a fix", c.Name)
		}
	}
	for _, n := range []string{"qemu", "qemu-img", "accelerator", "mmdebstrap", "mkfs.ext4", "cloud-init", "disk", "memory", "run dir", "intervals"} {
		assert.Contains(t, names, n)
	}
	assert.Equal(t, doctorWarn, names["accelerator"].Status)
	assert.Contains(t, names["accelerator"].Detail, "not probed")
}

func TestDoctorCommandProbes(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU")
	}
	if _, _, code := runCLI(t, "doctor", "--no-probe"); code != 0 {
		t.Skip("this machine lacks something essential; the probe is tested in framework/qemu")
	}
	out, _, code := runCLI(t, "doctor")
	require.Equal(t, 0, code, out)
	assert.Regexp(t, `(?m)^(OK|WARN) +accelerator +(kvm|tcg): `, out)
	assert.Contains(t, out, " probe ok in ")
	assert.Contains(t, out, "this machine can verify templates")
}

func TestForeignArchChecks(t *testing.T) {
	ivals, err := intervals.Load()
	require.NoError(t, err)
	missing := hostcheck.Host{BinfmtDir: t.TempDir(),
		LookPath: func(string) (string, error) { return "", exec.ErrNotFound },
		Stat:     func(string) (fs.FileInfo, error) { return nil, fs.ErrNotExist }}
	cs := foreignArchChecks(missing, qemu.ArchX8664, ivals)
	byName := map[string]doctorCheck{}
	for _, c := range cs {
		byName[c.Name] = c
	}
	for _, n := range []string{"emulator aarch64", "firmware aarch64", "binfmt qemu-aarch64", "arch-test"} {
		require.Contains(t, byName, n)
		assert.Equal(t, doctorWarn, byName[n].Status, "%s: a foreign arch is optional", n)
		assert.NotEmpty(t, byName[n].Fix, n)
	}
	cost := byName["foreign aarch64"]
	assert.Equal(t, doctorOK, cost.Status)
	assert.Contains(t, cost.Detail, "foreign architecture")
	assert.Regexp(t, `measured \d+(\.\d)?× slower`, cost.Detail)

	for _, c := range foreignArchChecks(missing, qemu.ArchAarch64, ivals) {
		assert.NotContains(t, c.Name, "aarch64", "on an aarch64 host aarch64 is native")
	}
}
