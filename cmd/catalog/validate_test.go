package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidateShipped(t *testing.T) {
	out, _, code := runCLI(t, "validate")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "PASS debian-13-docker\n")
	assert.NotContains(t, out, "FAIL")
	assert.Regexp(t, `\n\d+ checked: \d+ passed, 0 failed, \d+ warnings\n$`, out)
	// a warning is printed once, not once per template composed from it
	var warns []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "WARN ") {
			assert.NotContains(t, warns, l)
			warns = append(warns, l)
		}
	}
}

func TestValidateInvalidFile(t *testing.T) {
	out, _, code := runCLI(t, "validate", "../../catalog/testdata/invalid-digest.yaml")
	assert.Equal(t, 2, code)
	assert.Equal(t, `FAIL images/debian-99
  ../../catalog/testdata/invalid-digest.yaml:5:5: images[0].digest: must be set (or noDigest must say why)
  ../../catalog/testdata/invalid-digest.yaml:9:13: images[1].digest: must be sha256:<64 hex digits> or sha512:<128 hex digits>, not "sha256:0123"
  ../../catalog/testdata/invalid-digest.yaml:12:13: images[2].digest: must be sha256:<64 hex digits> or sha512:<128 hex digits>, not "md5:0123456789abcdef0123456789abcdef"
  ../../catalog/testdata/invalid-digest.yaml:14:15: images[3].location: must be an http(s) URL, not "ftp://example.org/both.qcow2"
  ../../catalog/testdata/invalid-digest.yaml:16:15: images[3].noDigest: must not be set together with digest
1 checked: 0 passed, 1 failed, 0 warnings
`, out)
}

func TestValidateValidFile(t *testing.T) {
	out, _, code := runCLI(t, "validate", "../../catalog/testdata/valid-basic.yaml")
	assert.Equal(t, 0, code, out)
	assert.Equal(t, `PASS debian-99-docker
WARN ../../catalog/testdata/valid-basic.yaml:18:15: images[1].noDigest: no digest, the download is not verified: rolling test image
1 checked: 1 passed, 0 failed, 1 warnings
`, out)
}

// A user's template composed from shipped fragments, and a broken one.
func TestValidateFileUsingShippedFragments(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	require.NoError(t, os.WriteFile(good, []byte(`apiVersion: guestcatalog.dev/v1alpha1
kind: Template
name: debian-13-docker
base: [images/debian-13, engines/docker]
memory: 3GiB
`), 0o644))
	out, _, code := runCLI(t, "validate", good)
	assert.Equal(t, 0, code, out)
	assert.True(t, strings.HasPrefix(out, "PASS debian-13-docker\n"), out)

	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte(`apiVersion: guestcatalog.dev/v1alpha1
kind: Template
name: debian-13-docker
base: [images/debian-13, engines/dokcer]
memroy: 3GiB
`), 0o644))
	out, _, code = runCLI(t, "validate", bad, filepath.Join(dir, "missing.yaml"))
	assert.Equal(t, 2, code)
	assert.Contains(t, out, "FAIL debian-13-docker\n  "+bad+`:5:1: memroy: unknown field "memroy" (did you mean memory?)`+"\n")
	assert.Contains(t, out, "FAIL "+filepath.Join(dir, "missing.yaml")+"\n  "+filepath.Join(dir, "missing.yaml")+": no such file or directory\n")
}

func TestValidateUnknownBaseInFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "t.yaml")
	require.NoError(t, os.WriteFile(p, []byte(`apiVersion: guestcatalog.dev/v1alpha1
kind: Template
name: debian-13-docker
base: [images/debian-13, engines/dokcer]
`), 0o644))
	out, _, code := runCLI(t, "validate", p)
	assert.Equal(t, 2, code)
	assert.Contains(t, out, "FAIL debian-13-docker\n  "+p+`:4:26: base[1]: unknown base "engines/dokcer" (did you mean engines/docker?)`+"\n")
}
