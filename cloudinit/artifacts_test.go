package cloudinit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
)

const artDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func fixtureArtifacts() *catalog.Template {
	t := fixtureDebianDocker()
	t.Artifacts = []catalog.Artifact{
		{Name: "tool", Sources: []catalog.ArtifactSource{{Arch: catalog.ArchX8664, URL: "https://x/tool", Digest: artDigest}},
			Install: &catalog.ArtifactInstall{Path: "/usr/local/bin/my tool"}},
		{Name: "bundle.tar.gz", Sources: []catalog.ArtifactSource{{Arch: catalog.ArchX8664, URL: "https://x/b.tgz",
			ChecksumFile: &catalog.ChecksumFile{URL: "https://x/SUMS", Name: "b.tgz"}}}},
	}
	return t
}

// TestRenderArtifacts: the artifacts step runs first, mounts the drive by
// label read-only, installs what has an install path; scripts get
// GUESTCATALOG_ARTIFACTS.
func TestRenderArtifacts(t *testing.T) {
	_, ud := render(t, fixtureArtifacts(), testInput(t, catalog.ArchX8664))
	files := writeFiles(t, ud)
	run := files[RunnerPath]["content"].(string)
	assert.Less(t, strings.Index(run, "run_step 00-artifacts system"), strings.Index(run, "run_step 02-enable-docker system"))
	script := files[ProvisionDir+"/00-artifacts.sh"]["content"].(string)
	assert.Contains(t, script, "dir=/var/lib/guestcatalog/artifacts\n")
	assert.Contains(t, script, `mount -t iso9660 -o ro,nodev,nosuid "$dev" "$dir"`)
	assert.Contains(t, script, "dev=/dev/disk/by-label/GCARTIFACTS\n")
	assert.Contains(t, script, "install -D -m 0755 \"$dir\"/tool '/usr/local/bin/my tool'\n")
	assert.Contains(t, script, "# tool: "+artDigest+"\n")
	assert.NotContains(t, script, "\"$dir\"/bundle.tar.gz", "no install path: left on the drive")
	assert.Contains(t, files[EnvPath]["content"], "GUESTCATALOG_ARTIFACTS=/var/lib/guestcatalog/artifacts")

	// A template without artifacts renders no such step nor variable.
	_, ud = render(t, fixtureDebianDocker(), testInput(t, catalog.ArchX8664))
	files = writeFiles(t, ud)
	assert.NotContains(t, files[RunnerPath]["content"], "00-artifacts")
	assert.NotContains(t, files[EnvPath]["content"], "GUESTCATALOG_ARTIFACTS")
}

// TestRenderArtifactsNoSourceForArch: the failing input.
func TestRenderArtifactsNoSourceForArch(t *testing.T) {
	_, err := Render(fixtureArtifacts(), testInput(t, catalog.ArchAarch64))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "artifacts[0] (tool): no source for aarch64")
}

// TestArtifactsScriptRuns runs the rendered step with a directory standing
// in for the mounted drive (the grep of /proc/mounts is what decides).
func TestArtifactsScriptRuns(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	script, err := artifactsScript(fixtureArtifacts(), catalog.ArchX8664)
	require.NoError(t, err)
	dir := t.TempDir()
	drive := filepath.Join(dir, "drive")
	require.NoError(t, os.MkdirAll(drive, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(drive, "tool"), []byte("#!/bin/sh\necho hi\n"), 0o444))
	dst := filepath.Join(dir, "root", "usr", "local", "bin", "my tool")
	script = strings.ReplaceAll(script, catalog.GuestArtifactsDir, drive)
	script = strings.ReplaceAll(script, "'/usr/local/bin/my tool'", "'"+dst+"'")
	script = strings.Replace(script, `if ! grep -q " $dir " /proc/mounts; then`, "if false; then", 1)
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	require.NoError(t, err, string(out))
	fi, err := os.Stat(dst)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm())
}
