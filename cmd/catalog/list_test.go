package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestListTable(t *testing.T) {
	out, _, code := runCLI(t, "list")
	require.Equal(t, 0, code)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Greater(t, len(lines), 1)
	assert.Regexp(t, `^NAME\s+DISTRO\s+ENGINE\s+ARCH\s+TIER\s+ALIASES$`, lines[0])
	assert.Contains(t, out, "\nubuntu-24.04-k3s ")
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "ubuntu-24.04-k3s ") {
			assert.Regexp(t, `^ubuntu-24.04-k3s\s+ubuntu-24.04\s+k3s\s+\S+\s+(nightly|experimental)\s+ubuntu-k3s$`, l)
		}
	}
}

func TestListJSON(t *testing.T) {
	out, _, code := runCLI(t, "list", "--json")
	require.Equal(t, 0, code)
	var entries []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &entries))
	require.NotEmpty(t, entries)
	var names []string
	for _, e := range entries {
		for _, k := range []string{"name", "distro", "family", "engine", "arch", "aliases", "tier", "description", "source"} {
			assert.Contains(t, e, k, "entry %v", e["name"])
		}
		assert.IsType(t, []any{}, e["arch"])
		assert.IsType(t, []any{}, e["aliases"])
		names = append(names, e["name"].(string))
		if e["name"] == "debian-13-docker" {
			assert.Equal(t, "debian-13", e["distro"])
			assert.Equal(t, "docker", e["engine"])
			assert.Contains(t, e["aliases"], "debian-docker")
		}
	}
	assert.Contains(t, names, "debian-13-docker")
	assert.IsIncreasing(t, names, "sorted by name")

	// the table lists the same templates
	table, _, _ := runCLI(t, "list")
	assert.Len(t, strings.Split(strings.TrimSpace(table), "\n"), len(entries)+1)
}
