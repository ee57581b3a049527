package catalog

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestShippedTemplates loads and validates every shipped template and
// fragment: the catalog must always be green.
func TestShippedTemplates(t *testing.T) {
	c, err := LoadEmbedded()
	require.NoError(t, err)
	results := c.CheckAll()
	require.NotEmpty(t, results)
	templates := 0
	for _, r := range results {
		assert.Empty(t, r.Errors.Strings(), "%s (%s)", r.Name, r.Source)
		if r.Kind == KindTemplate {
			templates++
		}
	}
	require.Positive(t, templates, "no shipped template (kind Template)")
	assert.Len(t, c.Templates(), templates, "every template resolves")

	for _, tmpl := range c.Templates() {
		for _, arch := range tmpl.Arches() {
			assert.NotEmpty(t, tmpl.ImagesFor(arch), tmpl.Name)
		}
		assert.Positive(t, tmpl.MemoryBytes(), tmpl.Name)
		assert.Positive(t, tmpl.DiskBytes(), tmpl.Name)
	}
}

// TestShippedAliases: the unversioned names users type.
func TestShippedAliases(t *testing.T) {
	c, err := LoadEmbedded()
	require.NoError(t, err)
	for alias, name := range map[string]string{
		"ubuntu":        "ubuntu-24.04",
		"ubuntu-k3s":    "ubuntu-24.04-k3s",
		"debian-docker": "debian-13-docker",
	} {
		tmpl, err := c.Resolve(alias)
		if assert.NoError(t, err, alias) {
			assert.Equal(t, name, tmpl.Name, alias)
		}
	}
}
