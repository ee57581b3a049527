package catalog

import (
	"context"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestShippedTemplates loads and validates every shipped template and
// fragment: the catalog must always be green.
func TestShippedTemplates(t *testing.T) {
	c, err := Load(context.Background())
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
	c, err := Load(context.Background())
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

// TestShippedWaitsBelongToTheFramework: the shipped templates wait through
// probes' eventually (named intervals, scaled by accelerator), never with
// a literal bound in shell: `timeout 90 sh -c 'until …'`, `sleep` loops in
// probes, `kubectl wait --timeout=600s`.
func TestShippedWaitsBelongToTheFramework(t *testing.T) {
	c, err := Load(context.Background())
	require.NoError(t, err)
	literal := regexp.MustCompile(`\btimeout +[0-9]|--timeout[= ][1-9]`)
	loop := regexp.MustCompile(`\b(until|while)\b[^\n]*\bdo\b`)
	// what the rules catch (lines the shipped templates had)
	assert.Regexp(t, literal, `timeout 90 sh -c 'until docker info >/dev/null 2>&1; do sleep 2; done'`)
	assert.Regexp(t, loop, `timeout 90 sh -c 'until docker info >/dev/null 2>&1; do sleep 2; done'`)
	assert.Regexp(t, literal, `k3s kubectl wait --for=condition=Ready node --all --timeout=600s`)
	assert.NotRegexp(t, literal, `k3s kubectl wait --for=condition=Ready node --all --timeout=0s`)
	for _, f := range append(c.Fragments(), c.Templates()...) {
		for i, s := range f.Provision {
			assert.NotRegexp(t, literal, s.Script, "%s provision[%d]: a literal wait ignores accelerator scaling", f.Name, i)
		}
		for i, p := range f.Probes {
			assert.NotRegexp(t, literal, p.Script, "%s probes[%d]: a literal wait ignores accelerator scaling; use eventually:", f.Name, i)
			assert.NotRegexp(t, loop, p.Script, "%s probes[%d]: a probe retried in shell; use eventually:", f.Name, i)
		}
	}
}
