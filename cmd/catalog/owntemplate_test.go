package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The worked example of README.md, "Your own templates", is
// examples/team-containerd.yaml; copied outside the repository it goes
// through validate, show, list and matrix as a file, a directory and a
// --catalog layer.
func TestReadmeOwnTemplateExample(t *testing.T) {
	example, err := os.ReadFile("../../examples/team-containerd.yaml")
	require.NoError(t, err)
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	body := strings.SplitN(string(example), "\n", 4)[3] // without the header comment
	assert.Contains(t, string(readme), "# t.yaml, in a directory of yours\n"+body,
		"README.md's example and examples/team-containerd.yaml differ")

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "t.yaml"), example, 0o644))
	t.Chdir(dir)
	env := []string{"GUESTCATALOG_CACHE=" + t.TempDir()}

	out, errOut, code := runCLIEnv(t, env, "validate", "./t.yaml")
	require.Equal(t, ExitOK, code, errOut)
	assert.Contains(t, out, "PASS team-containerd\n")

	out, errOut, code = runCLIEnv(t, env, "show", "./t.yaml")
	require.Equal(t, ExitOK, code, errOut)
	assert.Contains(t, out, "# composed from: images/debian-13, engines/containerd")
	assert.Contains(t, out, "name: containerd answers root over its socket")
	assert.Contains(t, out, "- curl")

	out, errOut, code = runCLIEnv(t, env, "--catalog", dir, "list")
	require.Equal(t, ExitOK, code, errOut)
	assert.Contains(t, out, "team-containerd")
	assert.Contains(t, out, "debian-13-containerd", "layered over the built-in catalog")

	// Without the built-in catalog its bases are gone.
	out, errOut, code = runCLIEnv(t, append(env, "GUESTCATALOG_CATALOG="+dir, "GUESTCATALOG_NO_BUILTIN=1"), "list")
	require.Equal(t, ExitOK, code, errOut)
	assert.NotContains(t, out, "debian-13-containerd", "--no-builtin")
	assert.Contains(t, errOut, "team-containerd does not validate")

	out, errOut, code = runCLIEnv(t, env, "matrix", "--tier", "all", ".")
	require.Equal(t, ExitOK, code, errOut)
	assert.Contains(t, out, `"template":"team-containerd"`)

	// A name of the shipped catalog is taken over, said once on stderr.
	shadow := strings.Replace(string(example), "name: team-containerd", "name: debian-13-containerd", 1)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "t.yaml"), []byte(shadow), 0o644))
	_, errOut, code = runCLIEnv(t, env, "validate", "./t.yaml")
	require.Equal(t, ExitOK, code, errOut)
	assert.Equal(t, 1, strings.Count(errOut, "catalog: debian-13-containerd from ./t.yaml:6:7 replaces the built-in one (catalog/templates/debian-13-containerd.yaml"), errOut)
}
