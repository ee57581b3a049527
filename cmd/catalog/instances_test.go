package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework/instance"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
)

// writeInstance puts an instance record into cache's store, naming p as
// its QEMU (a real process stands in; the integration tests use QEMU).
func writeInstance(t *testing.T, cache, name string, p instance.Proc) {
	t.Helper()
	dir := filepath.Join(cache, "instances", name)
	require.NoError(t, os.MkdirAll(dir, 0o700))
	b, err := json.Marshal(instance.Record{Format: instance.Format, Name: name, State: instance.StateRunning,
		Template: "debian-13-containerd", Arch: "x86_64", Accel: "tcg", BootID: qemu.BootID(), QEMU: p,
		SSH: instance.SSH{Addr: "127.0.0.1:2222", User: "debian"}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, instance.RecordFile), b, 0o600))
}

func sleeper(t *testing.T) (instance.Proc, *exec.Cmd) {
	t.Helper()
	c := exec.Command("sleep", "300")
	require.NoError(t, c.Start())
	t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
	st, err := qemu.ProcessStart(c.Process.Pid)
	require.NoError(t, err)
	return instance.Proc{PID: c.Process.Pid, Start: st}, c
}

func TestPsAndGcInstances(t *testing.T) {
	cache := t.TempDir()
	out, _, code := runCLI(t, "ps", "--cache-dir", cache)
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "no instances")

	live, _ := sleeper(t)
	dead, deadCmd := sleeper(t)
	writeInstance(t, cache, "box", live)
	writeInstance(t, cache, "gone", dead)
	require.NoError(t, deadCmd.Process.Kill())
	_ = deadCmd.Wait()

	out, _, code = runCLI(t, "ps", "--cache-dir", cache)
	assert.Equal(t, 0, code)
	assert.Regexp(t, `(?m)^box\s+running\s+debian-13-containerd\s+x86_64\s+tcg\s+\S+\s+debian@127.0.0.1:2222$`, out)
	assert.Regexp(t, `(?m)^gone\s+dead\s+`, out)

	out, _, code = runCLI(t, "ps", "--json", "--cache-dir", cache)
	require.Equal(t, 0, code)
	var es []psEntry
	require.NoError(t, json.Unmarshal([]byte(out), &es))
	require.Len(t, es, 2)
	assert.Equal(t, "running", es[0].Status)
	assert.Equal(t, live.PID, es[0].QEMUPID)
	assert.Equal(t, "dead", es[1].Status)

	out, _, code = runCLI(t, "gc", "--cache-dir", cache, "--run-root", t.TempDir())
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "removed instance gone (qemu pid")
	assert.NoDirExists(t, filepath.Join(cache, "instances", "gone"))
	assert.DirExists(t, filepath.Join(cache, "instances", "box"))
}

// Usage mistakes of the instance commands exit 2 before anything starts.
func TestInstanceCommandsUsage(t *testing.T) {
	cache := t.TempDir()
	for _, args := range [][]string{
		{"exec", "nosuch", "--", "true"},
		{"exec", "box", "true"}, // no --
		{"exec", "Bad_Name", "--", "true"},
		{"shell", "nosuch"},
		{"cp", "/tmp/a", "/tmp/b"},
		{"cp", "a:/x", "b:/y"},
		{"cp", "Bad:/x", "/tmp/y"},
		{"cp", "nosuch:/x", "/tmp/y"},
		{"down"},
		{"down", "--all", "box"},
		{"down", "nosuch"},
		{"run", "debian-containerd", "--", "true"}, // no --rm
		{"run", "--rm", "debian-containerd", "true"},
		{"run", "--rm", "nosuch-template", "--", "true"},
		{"up", "--name", "Bad_Name", "debian-containerd"},
		{"up", "nosuch-template"},
	} {
		_, stderr, code := runCLI(t, append(args, "--cache-dir", cache)...)
		assert.Equal(t, 2, code, "%v: %s", args, stderr)
	}
	out, _, code := runCLI(t, "down", "--all", "--cache-dir", cache)
	assert.Equal(t, 0, code, out)
}
