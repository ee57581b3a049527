package main

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
)

// A bad --mount is a usage error (exit 2) that names the value, before
// anything is resolved or started.
func TestMountFlagRefused(t *testing.T) {
	cache := t.TempDir()
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"up", "--mount", dir + ":workspace", "debian-containerd"}, `invalid --mount "` + dir + `:workspace": the guest path "workspace" is not absolute`},
		{[]string{"up", "--mount", filepath.Join(dir, "nope") + ":/w", "debian-containerd"}, "no such file or directory"},
		{[]string{"up", "--mount", dir + ":/w", "--mount", dir + ":/w:ro", "debian-containerd"}, "/w is already mounted by --mount"},
		{[]string{"run", "--rm", "--mount", dir + ":/w:rwx", "debian-containerd", "--", "true"}, `the third field is "rwx": want ro or rw`},
		{[]string{"run", "--rm", "--mount", dir + ":/usr", "debian-containerd", "--", "true"}, "/usr is a guest system directory"},
		{[]string{"up", "--mount", cache + ":/cache:ro", "debian-containerd"}, "overlap (it holds every instance's SSH keys and the saved guests)"},
	} {
		_, errOut, code := runCLI(t, append(tc.args, "--cache-dir", cache)...)
		assert.Equal(t, 2, code, "%v: %s", tc.args, errOut)
		assert.Contains(t, errOut, tc.msg, "%v", tc.args)
	}
}

// A --mount nested in a template's mount is refused once the template is
// resolved, before its guest is looked up or provisioned.
func TestMountFlagNestedInTemplateMount(t *testing.T) {
	cache := t.TempDir()
	dir := t.TempDir()
	_, errOut, code := runCLI(t, "up", "--offline", "--cache-dir", cache, "--mount", dir+":/workspace/sub", "debian-13-sandbox")
	assert.Equal(t, 2, code, errOut)
	assert.Contains(t, errOut, "/workspace/sub nests with the template's mount at /workspace")
	assert.NoDirExists(t, filepath.Join(cache, "provisioned"), "nothing was provisioned")
}
