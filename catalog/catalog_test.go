package catalog

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResolveByAlias(t *testing.T) {
	c := loadFixture(t, "valid-basic.yaml")
	byAlias, err := c.Resolve("debian-test-docker")
	require.NoError(t, err)
	assert.Equal(t, "debian-99-docker", byAlias.Name)
}

func TestResolveUnknownSuggests(t *testing.T) {
	c := loadFixture(t, "valid-basic.yaml")
	for name, want := range map[string]string{
		"debian-99-dockr":    `unknown template "debian-99-dockr" (did you mean debian-99-docker?)`,
		"debian-docker":      `unknown template "debian-docker" (did you mean debian-99-docker or debian-test-docker?)`,
		"docker-debian":      `unknown template "docker-debian" (did you mean debian-99-docker or debian-test-docker?)`,
		"something-else-xyz": `unknown template "something-else-xyz"`,
	} {
		_, err := c.Resolve(name)
		require.ErrorIs(t, err, ErrUnknownTemplate, name)
		assert.EqualError(t, err, want)
	}
}

func TestResolveFragmentIsAnError(t *testing.T) {
	c := loadFixture(t, "valid-basic.yaml")
	_, err := c.Resolve("engines/test-docker")
	require.EqualError(t, err, "engines/test-docker is a fragment: it is composed into templates with base:, not used alone")
	r, err := c.Check("engines/test-docker")
	require.NoError(t, err, "Check accepts fragments")
	assert.True(t, r.OK())
	assert.Equal(t, KindFragment, r.Kind)
}

func TestResolveInvalidReturnsProblems(t *testing.T) {
	c := loadFixture(t, "invalid-engine-coverage.yaml")
	_, err := c.Resolve("alpine-99-docker")
	var ps Problems
	require.True(t, errors.As(err, &ps))
	assert.Len(t, ps, 4)
}

func TestWithParams(t *testing.T) {
	c := loadFixture(t, "valid-basic.yaml")
	tmpl, err := c.Resolve("debian-99-docker", WithParams(map[string]string{"channel": "test; rm -rf /"}))
	require.NoError(t, err)
	assert.Equal(t, "test; rm -rf /", tmpl.Params["channel"], "values are data, kept verbatim")

	_, err = c.Resolve("debian-99-docker", WithParams(map[string]string{"chanel": "x"}))
	require.EqualError(t, err, `params: debian-99-docker declares no param "chanel" (declared: channel, mirror)`)

	_, err = loadFixture(t, "valid-template-base.yaml").Resolve("alpine-99", WithParams(map[string]string{"x": "1"}))
	require.EqualError(t, err, `params: alpine-99 declares no param "x" (declared: none)`)
}

func TestTemplatesAndFragments(t *testing.T) {
	c, err := load(false, []string{"testdata/valid-basic.yaml", "testdata/valid-template-base.yaml", "testdata/invalid-engine-coverage.yaml"})
	require.NoError(t, err, "invalid-engine-coverage.yaml loads; it fails validation")
	var names []string
	for _, tmpl := range c.Templates() {
		names = append(names, tmpl.Name)
		assert.NotNil(t, tmpl.CPUs, "templates are defaulted")
	}
	assert.Equal(t, []string{"alpine-99", "alpine-99-podman", "debian-99-docker"}, names, "sorted, invalid ones left out")
	var frags []string
	for _, f := range c.Fragments() {
		frags = append(frags, f.Name)
	}
	assert.Equal(t, []string{"engines/test", "engines/test-docker", "images/debian-99"}, frags)
}

func TestTemplateBasedOnTemplate(t *testing.T) {
	tmpl := resolveFixture(t, "valid-template-base.yaml", "alpine-99-podman")
	assert.Empty(t, tmpl.Aliases, "aliases are not inherited")
	assert.Equal(t, "openrc", tmpl.Distro.Init)
	assert.Equal(t, "/bin/sh", tmpl.User.Shell)
	assert.Equal(t, "podman version --format '{{.Client.Version}}'", tmpl.Engine.VersionCommand)
	require.Len(t, tmpl.Provision, 2, "the fedora step is dropped")
	assert.Equal(t, []string{"podman"}, tmpl.Provision[1].Packages)
	assert.Equal(t, FirmwareUEFI, tmpl.Images[0].Firmware)
}

func TestLoadPathsLayerOverShipped(t *testing.T) {
	c, err := Load(context.Background(), WithPaths("testdata/valid-basic.yaml"))
	require.NoError(t, err)
	rs := c.CheckFiles()
	require.Len(t, rs, 1, "only the file's template; its fragments are checked through it")
	assert.Equal(t, "debian-99-docker", rs[0].Name)
	assert.True(t, rs[0].OK())

	// a file replacing a shipped fragment: the fragment's problem is
	// reported for it, or for every shipped template composed from it
	shipped := c.Fragments()
	require.NotEmpty(t, shipped)
	name := shipped[0].Name
	p := filepath.Join(t.TempDir(), "override.yaml")
	require.NoError(t, writeFile(p, "apiVersion: guestcatalog.dev/v1alpha1\nkind: Fragment\nname: "+name+"\ncpus: 0\n"))
	c, err = Load(context.Background(), WithPaths(p))
	require.NoError(t, err)
	rs = c.CheckFiles()
	require.NotEmpty(t, rs)
	for _, r := range rs {
		assert.Contains(t, r.Errors.Strings(), p+":4:7: cpus: must be at least 1, not 0", r.Name)
	}
}

func TestDuplicateNameInOneLayer(t *testing.T) {
	c, err := load(false, []string{"testdata/valid-basic.yaml", "testdata/valid-basic.yaml"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `testdata/valid-basic.yaml:6:7: name: "images/debian-99" is already defined at testdata/valid-basic.yaml:6:7`)
	_, err = c.Resolve("debian-99-docker")
	require.NoError(t, err, "the first definition stays usable")
}
