package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/ci/matrix"
)

func runMatrixCLI(t *testing.T, args ...string) matrix.Matrix {
	t.Helper()
	out, errOut, code := runCLI(t, append([]string{"matrix"}, args...)...)
	require.Equal(t, 0, code, errOut)
	var m matrix.Matrix
	require.NoError(t, json.Unmarshal([]byte(out), &m), out)
	return m
}

// TestMatrixCoversTheNightlyTemplates checks the matrix of the shipped
// catalog against the catalog itself: every nightly template on every arch
// it has an image for, and nothing else.
func TestMatrixCoversTheNightlyTemplates(t *testing.T) {
	c, err := catalog.Load(context.Background())
	require.NoError(t, err)
	var want []string
	for _, tp := range c.Templates() {
		if tp.Tier != catalog.TierNightly {
			continue
		}
		for _, a := range tp.Arches() {
			want = append(want, tp.Name+"/"+a)
		}
	}
	require.NotEmpty(t, want, "the catalog marks no template nightly")

	m := runMatrixCLI(t)
	var got []string
	for _, e := range m.Include {
		got = append(got, e.Template+"/"+e.Arch)
		assert.NotEmpty(t, e.Runner, e.Template)
		assert.Positive(t, e.Timeout, e.Template)
		assert.Regexp(t, `^images-`+e.Arch+`-[0-9a-f]{20}$`, e.CacheKey)
	}
	assert.ElementsMatch(t, want, got)
}

func TestMatrixShardsPartitionTheMatrix(t *testing.T) {
	full := runMatrixCLI(t)
	var union []matrix.Entry
	for i := 1; i <= 3; i++ {
		union = append(union, runMatrixCLI(t, "--shard", []string{"1/3", "2/3", "3/3"}[i-1]).Include...)
	}
	assert.ElementsMatch(t, full.Include, union)
}

func TestMatrixArchAndRunnerFlags(t *testing.T) {
	m := runMatrixCLI(t, "--arch", "aarch64", "--runner", "aarch64=arm-big", "--indent")
	require.NotEmpty(t, m.Include)
	for _, e := range m.Include {
		assert.Equal(t, "aarch64", e.Arch)
		assert.Equal(t, "arm-big", e.Runner)
	}
}

func TestMatrixGitHubOutput(t *testing.T) {
	p := filepath.Join(t.TempDir(), "github_output")
	require.NoError(t, os.WriteFile(p, []byte("other=1\n"), 0o644))
	out, errOut, code := runCLI(t, "matrix", "--github-output", p)
	require.Equal(t, 0, code, errOut)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, lines, 3)
	assert.Equal(t, "other=1", lines[0], "appended, not overwritten")
	assert.Equal(t, "matrix="+strings.TrimSpace(out), lines[1])
	assert.Regexp(t, `^count=[1-9][0-9]*$`, lines[2])
	assert.Contains(t, errOut, "catalog matrix: matrix: ")
}

func TestMatrixErrors(t *testing.T) {
	_, errOut, code := runCLI(t, "matrix", "--shard", "0/2")
	assert.Equal(t, 2, code)
	assert.Equal(t, "catalog: shard 0/2: want 1 ≤ i ≤ n\n", errOut)

	_, errOut, code = runCLI(t, "matrix", "--runner", "aarch64")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `--runner "aarch64": want ARCH=LABEL`)

	_, errOut, code = runCLI(t, "matrix", "--arch", "riscv64")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `arch "riscv64": no runner for arch`)

	_, errOut, code = runCLI(t, "matrix", "--tier", "weekly")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `tier "weekly": want nightly, experimental or all`)
}

func TestReportSummaryCLI(t *testing.T) {
	reports := filepath.Join("..", "..", "ci", "summary", "testdata", "reports")
	out, errOut, code := runCLI(t, "report", "summary", "--title", "Nightly", reports)
	require.Equal(t, 0, code, errOut)
	assert.True(t, strings.HasPrefix(out, "## Nightly\n\n**2 passed**, **1 failed**, **1 skipped**, **1 unreadable**\n"), out)

	_, _, code = runCLI(t, "report", "summary", "--fail", reports)
	assert.Equal(t, 1, code, "--fail: a template failed")

	pass := filepath.Join(reports, "debian-13-docker-x86_64", "report.json")
	_, _, code = runCLI(t, "report", "summary", "--fail", pass)
	assert.Equal(t, 0, code)

	dst := filepath.Join(t.TempDir(), "summary.md")
	require.NoError(t, os.WriteFile(dst, []byte("before\n"), 0o644))
	out, _, code = runCLI(t, "report", "summary", "-o", dst, pass)
	require.Equal(t, 0, code)
	assert.Empty(t, out)
	b, err := os.ReadFile(dst)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(b), "before\n## Guest template verification\n"))

	_, errOut, code = runCLI(t, "report", "summary", "nope/")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "reading reports: stat nope/")
}

func TestCIHelpTexts(t *testing.T) {
	for _, args := range [][]string{{"matrix"}, {"report", "summary"}, {"images"}, {"images", "check"}, {"images", "update"}} {
		out, _, code := runCLI(t, append(args, "--help")...)
		require.Equal(t, 0, code)
		assert.Contains(t, out, "Usage:", strings.Join(args, " "))
		assert.Contains(t, out, "Examples:", strings.Join(args, " "))
		assert.True(t, slices.ContainsFunc(strings.Split(out, "\n"), func(l string) bool {
			return strings.HasPrefix(l, "Flags:") || strings.HasPrefix(l, "Available Commands:")
		}))
	}
}
