package catalog

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPackageNameRules(t *testing.T) {
	for name, want := range map[string][2]bool{ // {any distro, Debian}
		"docker.io":       {true, true},
		"g++":             {true, true},
		"podman=5.4.2-1":  {true, true},
		"gcc:arm64":       {true, true},
		"Docker":          {true, false},
		"python3_dev":     {true, false},
		"@development":    {false, false},
		"-y":              {false, false},
		"bad;rm -rf /":    {false, false},
		"a b":             {false, false},
		"pkg>=1":          {false, false},
		"x":               {true, false}, // Debian names have two characters at least
		"github.com/a/b":  {true, false},
		"":                {false, false},
		"libc6:amd64=2.4": {true, true},
	} {
		assert.Equal(t, want[0], ValidPackageName(name), "ValidPackageName(%q)", name)
		assert.Equal(t, want[1], ValidDebianPackageName(name), "ValidDebianPackageName(%q)", name)
	}
	assert.True(t, ValidEnvName("PARAM_x"))
	assert.False(t, ValidEnvName("9lives"))
}

// TestBuildPackagesAreDebianNames: validate refuses what the image builder
// refuses.
func TestBuildPackagesAreDebianNames(t *testing.T) {
	c := catalogFromYAML(t, `apiVersion: guestcatalog.dev/v1alpha1
kind: Fragment
name: images/x
images:
  - arch: x86_64
    build:
      suite: trixie
      packages: [docker.io, Docker]
`)
	r, err := c.Check("images/x")
	require.NoError(t, err)
	assert.Equal(t, []string{r.Source + `:8:29: images[0].build.packages[1]: must be a Debian package name (^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?(=[A-Za-z0-9.+~:-]+)?$), not "Docker"`}, r.Errors.Strings())
}
