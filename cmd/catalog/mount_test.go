package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework/instance"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
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

// ps --output json lists an instance's mounts from its record.
func TestPsShowsMounts(t *testing.T) {
	cache := t.TempDir()
	live, _ := sleeper(t)
	dir := filepath.Join(cache, "instances", "agent")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	ms := []instance.Mount{
		{HostPath: "/home/me/project", GuestPath: "/workspace", Writable: true, Tag: "mount0", Source: instance.MountFromFlag},
		{HostPath: "/home/me/ref", GuestPath: "/mnt/ref", Tag: "xmount0", Source: instance.MountFromFlag},
	}
	b, err := json.Marshal(instance.Record{Format: instance.Format, Name: "agent", State: instance.StateRunning,
		Template: "debian-13-sandbox", Arch: "x86_64", BootID: qemu.BootID(), QEMU: live, Mounts: ms})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, instance.RecordFile), b, 0o600))

	out, _, code := runCLI(t, "ps", "-o", "json", "--cache-dir", cache)
	require.Equal(t, 0, code)
	var es []psEntry
	require.NoError(t, json.Unmarshal([]byte(out), &es))
	require.Len(t, es, 1)
	assert.Equal(t, ms, es[0].Mounts)
	assert.Contains(t, out, `"guestPath": "/mnt/ref"`)
}
