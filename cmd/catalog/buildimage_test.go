package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/imagebuild"
)

func TestBuildImageHelpExplainsRecipeAndCache(t *testing.T) {
	out, _, code := runCLI(t, "build-image", "--help")
	assert.Zero(t, code)
	for _, want := range []string{"suite:", "bake: true", "mmdebstrap", "<cache dir>/images/<key>/", "meta.json", "--force"} {
		assert.Contains(t, out, want)
	}
}

func TestBuildImageRefusesTemplatesWithoutARecipe(t *testing.T) {
	if catalog.HostArch() != catalog.ArchX8664 {
		t.Skip("the shipped recipes are for x86_64")
	}
	_, stderr, code := runCLI(t, "--cache-dir", t.TempDir(), "build-image", "ubuntu-24.04")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "template ubuntu-24.04 has no local build recipe for x86_64")

	_, stderr, code = runCLI(t, "--cache-dir", t.TempDir(), "build-image", "no-such-template")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "no-such-template")
}

// With the image in the cache, build-image needs no tool: it prints where
// the image is (by alias, too).
func TestBuildImagePrintsACachedImage(t *testing.T) {
	if catalog.HostArch() != catalog.ArchX8664 {
		t.Skip("the shipped recipes are for x86_64")
	}
	cat, err := catalog.Load(context.Background())
	require.NoError(t, err)
	tt, err := cat.Resolve("debian-13-containerd")
	require.NoError(t, err)
	recipe, err := buildRecipeFor(tt, catalog.ArchX8664)
	require.NoError(t, err)
	plan, err := imagebuild.NewPlan(*recipe, []string{"containerd", "runc"}, catalog.ArchX8664)
	require.NoError(t, err)

	cache := t.TempDir()
	dir := imagebuild.EntryDir(cache, plan.Key)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for _, f := range []string{imagebuild.DiskFile, imagebuild.KernelFile, imagebuild.InitrdFile} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644))
	}
	meta := imagebuild.Meta{Key: plan.Key, BuilderVersion: imagebuild.BuilderVersion, Plan: *plan,
		Append: imagebuild.KernelAppend(catalog.ArchX8664), Digest: "sha256:" + strings.Repeat("0", 64), Kernel: "6.12.0-cloud-amd64",
		Installed: []imagebuild.InstalledPackage{{Name: "containerd", Version: "1.7.24", Arch: "amd64"}}}
	b, err := json.Marshal(meta)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, imagebuild.MetaFile), b, 0o644))
	t.Setenv("PATH", t.TempDir()) // no build tool is needed for a hit

	out, stderr, code := runCLI(t, "--cache-dir", cache, "build-image", "debian-containerd")
	require.Zero(t, code, stderr)
	assert.Contains(t, stderr, "baking containerd runc")
	assert.Contains(t, stderr, "from cache")
	assert.Contains(t, out, "build:trixie (key "+plan.Key+", from-cache)")
	assert.Contains(t, out, filepath.Join(dir, imagebuild.DiskFile))
	assert.Contains(t, out, "root=LABEL=root")

	out, _, code = runCLI(t, "--cache-dir", cache, "build-image", "--json", "debian-13-containerd")
	require.Zero(t, code)
	var j builtImageJSON
	require.NoError(t, json.Unmarshal([]byte(out), &j))
	assert.Equal(t, "debian-13-containerd", j.Template)
	assert.Equal(t, "from-cache", j.Status)
	assert.Equal(t, filepath.Join(dir, imagebuild.KernelFile), j.Kernel)
	assert.Equal(t, []string{"containerd", "runc"}, j.Baked)
	assert.Equal(t, 1, j.Packages)
}
