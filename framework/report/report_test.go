package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFinish(t *testing.T) {
	cases := []struct {
		name   string
		checks []Check
		want   Result
		reason string
	}{
		{"all pass", []Check{{Name: "a", Result: Pass}, {Name: "b", Result: Pass}}, Pass, ""},
		{"one fail", []Check{{Name: "a", Result: Pass}, {Name: "b", Result: Fail, Message: "boom\nmore"}}, Fail, "b: boom"},
		{"all skipped", []Check{{Name: "a", Result: Skip, Message: "k3s cannot be downloaded"}}, Skip, "k3s cannot be downloaded"},
		{"pass and skip", []Check{{Name: "a", Result: Pass}, {Name: "b", Result: Skip, Message: "x"}}, Pass, ""},
		{"no checks", nil, Skip, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &Template{Template: "t", Checks: tc.checks}
			r.Finish()
			assert.Equal(t, tc.want, r.Result)
			assert.Equal(t, tc.reason, r.Reason)
		})
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "report.json")
	in := &Template{Template: "debian-13-docker", Result: Pass, Accelerator: "tcg",
		Image:  Image{Source: "build:trixie", Digest: "sha256:00"},
		Phases: []Phase{{Name: "ssh", Seconds: 1.5}}, Checks: []Check{{Name: "docker: run", Result: Pass, Seconds: 2}}}
	require.NoError(t, in.WriteFile(p))
	out, err := ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, in.Template, out.Template)
	assert.Equal(t, in.Checks, out.Checks)
	assert.Equal(t, in.Phases, out.Phases)
}

func TestSummary(t *testing.T) {
	var b bytes.Buffer
	ok := Summary(&b, []*Template{
		{Template: "b", Result: Skip, Reason: "no network", Seconds: 1},
		{Template: "a", Result: Fail, Reason: "docker: run: exit 1", Artifacts: "/tmp/a", Seconds: 30, Accelerator: "tcg"},
	})
	assert.False(t, ok)
	assert.Equal(t, "FAIL a (30s, tcg): docker: run: exit 1\n  artifacts: /tmp/a\nSKIPPED b (1s): no network\n", b.String())
}

func TestFlakyAndDiscardedAreReported(t *testing.T) {
	rep := &Template{Template: "debian-13", Result: Pass, Seconds: 90, Accelerator: "tcg", Provisioned: "fresh",
		ReuseDiscarded: "identity check failed: phase ssh: ssh host key mismatch",
		Flaky:          true,
		Attempts: []Attempt{
			{Result: Fail, Phase: "userspace", Error: "console shows a failure (kernel-panic)", ConsoleTail: "Kernel panic - not syncing: Fatal exception in interrupt", Seconds: 4.6},
			{Result: Pass, Seconds: 60},
		}}
	assert.Equal(t, "PASS debian-13 (90s, tcg, flaky: 2 attempts)", VerdictLine(rep))
	p := filepath.Join(t.TempDir(), "report.json")
	require.NoError(t, rep.WriteFile(p))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"flaky": true`)
	assert.Contains(t, string(b), `"reuseDiscarded": "identity check failed: phase ssh: ssh host key mismatch"`)
	assert.Contains(t, string(b), `"consoleTail": "Kernel panic - not syncing: Fatal exception in interrupt"`)
	back, err := ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, rep.Attempts, back.Attempts)
}

func TestForeignArchFieldsAreCamelCaseAndOmittedWhenNative(t *testing.T) {
	b, err := json.Marshal(&Template{Template: "t", Arch: "aarch64", Accelerator: "tcg", HostArch: "x86_64", ForeignArch: true, EmulationFactor: 2.5})
	require.NoError(t, err)
	assert.Contains(t, string(b), `"arch":"aarch64","result":"","accelerator":"tcg","hostArch":"x86_64","foreignArch":true,"emulationFactor":2.5`)
	b, err = json.Marshal(&Template{Template: "t", Arch: "x86_64", HostArch: "x86_64"})
	require.NoError(t, err)
	assert.NotContains(t, string(b), "foreignArch")
	assert.NotContains(t, string(b), "emulationFactor")
}
