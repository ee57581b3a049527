package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// completions runs `catalog __complete args...` and returns the offered
// values (the last line is cobra's directive).
func completions(t *testing.T, env []string, args ...string) []string {
	t.Helper()
	out, errOut, code := runCLIEnv(t, env, append([]string{"__complete"}, args...)...)
	require.Equal(t, ExitOK, code, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.True(t, strings.HasPrefix(lines[len(lines)-1], ":"), out)
	var vals []string
	for _, l := range lines[:len(lines)-1] {
		v, _, _ := strings.Cut(l, "\t")
		vals = append(vals, v)
	}
	return vals
}

func TestCompleteTemplateNamesAndAliases(t *testing.T) {
	got := completions(t, nil, "verify", "ubuntu-k")
	assert.Contains(t, got, "ubuntu-k3s", "an alias")
	assert.Subset(t, got, []string{"ubuntu-k0s", "ubuntu-k3s", "ubuntu-k8s"})
	for _, v := range got {
		assert.True(t, strings.HasPrefix(v, "ubuntu-k"), v)
	}
	assert.Contains(t, completions(t, nil, "verify", "ubuntu-24.04-k"), "ubuntu-24.04-k3s", "a name")

	dir := t.TempDir()
	b, err := os.ReadFile("../../examples/team-containerd.yaml")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "team.yaml"), b, 0o644))
	assert.Equal(t, []string{"team-containerd"}, completions(t, nil, "--catalog", dir, "verify", "team-"), "--catalog layers")
}

func TestCompleteFlagValues(t *testing.T) {
	assert.Equal(t, []string{"auto", "kvm", "tcg"}, completions(t, nil, "verify", "--accel", ""))
	assert.Equal(t, []string{"x86_64", "aarch64"}, completions(t, nil, "verify", "--arch", ""))
	assert.Equal(t, []string{"nightly", "experimental"}, completions(t, nil, "verify", "--tier", ""))
	assert.Equal(t, []string{"table", "json", "yaml"}, completions(t, nil, "list", "--output", ""))
	assert.Equal(t, []string{"table", "json"}, completions(t, nil, "verify", "-o", ""))
	assert.Equal(t, []string{"x86_64", "aarch64"}, completions(t, nil, "render", "--arch", ""))
}

func TestCompleteLabelFilter(t *testing.T) {
	got := completions(t, nil, "verify", "--label-filter", "engine:d")
	assert.Contains(t, got, "engine:docker")
	assert.NotContains(t, got, "engine:podman")

	got = completions(t, nil, "verify", "--label-filter", "engine:docker && distro:deb")
	assert.Contains(t, got, "engine:docker && distro:debian-13")
	got = completions(t, nil, "verify", "--label-filter", "tier:")
	assert.Equal(t, []string{"tier:experimental", "tier:nightly"}, got)
}
