package caches

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/artifacts"
	"github.com/guestcatalog/guestcatalog/framework/download"
	"github.com/guestcatalog/guestcatalog/framework/imagebuild"
	"github.com/guestcatalog/guestcatalog/framework/provisioned"
	"github.com/guestcatalog/guestcatalog/framework/qemu/qemutest"
)

func qemuImg(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("qemu-img", args...).CombinedOutput()
	require.NoError(t, err, string(out))
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// fill makes one entry of each kind under root: a verified download, a
// built image (a real qcow2) and a saved guest (a qcow2 overlay on the
// image with an internal snapshot).
func fill(t *testing.T, root string) (imageDir, savedDir string) {
	t.Helper()
	qemutest.RequireTools(t, "qemu-img")
	body := []byte("a cloud image, or so it says")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	t.Cleanup(srv.Close)
	dc, err := download.New(download.WithCacheDir(root))
	require.NoError(t, err)
	_, err = dc.Fetch(context.Background(), srv.URL+"/cloud.qcow2", sha(body))
	require.NoError(t, err)

	imageDir = imagebuild.EntryDir(root, "0123456789abcdef")
	require.NoError(t, os.MkdirAll(imageDir, 0o755))
	disk := filepath.Join(imageDir, imagebuild.DiskFile)
	qemuImg(t, "create", "-q", "-f", "qcow2", disk, "16M")
	b, err := os.ReadFile(disk)
	require.NoError(t, err)
	for _, f := range []string{imagebuild.KernelFile, imagebuild.InitrdFile} {
		require.NoError(t, os.WriteFile(filepath.Join(imageDir, f), []byte(f), 0o644))
	}
	meta, err := json.Marshal(imagebuild.Meta{Key: "0123456789abcdef", BuilderVersion: imagebuild.BuilderVersion,
		Recipe: catalog.BuildRecipe{Suite: "trixie"}, Plan: imagebuild.Plan{Arch: "x86_64"}, Digest: sha(b)})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(imageDir, imagebuild.MetaFile), meta, 0o644))

	st, err := provisioned.Open(root)
	require.NoError(t, err)
	stg, err := st.Stage()
	require.NoError(t, err)
	qemuImg(t, "create", "-q", "-f", "qcow2", "-b", disk, "-F", "qcow2", stg.Path(provisioned.FileDisk))
	for _, f := range []string{provisioned.FileState, provisioned.FileRAM, provisioned.FileClientKey, provisioned.FileHostKey, provisioned.FileSeed} {
		require.NoError(t, os.WriteFile(stg.Path(f), []byte(f), 0o600))
	}
	e, err := stg.Commit(provisioned.Meta{Key: "k1", Template: "debian-13-docker", Image: "build:trixie", Base: disk})
	require.NoError(t, err)
	return imageDir, e.Dir
}

// On main, `cache ls|prune|verify` saw <cache>/downloads only: built
// images and saved guests were invisible to them.
func TestListPruneVerifyCoverEveryKind(t *testing.T) {
	root := t.TempDir()
	imageDir, savedDir := fill(t, root)
	c, err := Open(root)
	require.NoError(t, err)
	entries, err := c.List()
	require.NoError(t, err)
	require.Len(t, entries, 3)
	assert.Equal(t, KindDownload, entries[0].Kind)
	assert.Equal(t, KindImage, entries[1].Kind)
	assert.Equal(t, "build:trixie/x86_64 0123456789abcdef", entries[1].Name)
	assert.Equal(t, KindProvisioned, entries[2].Kind)
	assert.Equal(t, "debian-13-docker", entries[2].Name)
	for _, e := range entries {
		assert.Positive(t, e.DiskUsage, e.Name)
		assert.WithinDuration(t, time.Now(), e.LastUsed, time.Minute, e.Name)
	}

	// Everything is sound.
	res, err := c.Verify(context.Background())
	require.NoError(t, err)
	require.Len(t, res, 3)
	for _, r := range res {
		assert.NoError(t, r.Err, r.Entry.Name)
	}

	// Prune by kind and age: the saved guest was last used 10 days ago.
	old := time.Now().Add(-240 * time.Hour)
	require.NoError(t, os.Chtimes(filepath.Join(savedDir, provisioned.FileMeta), old, old))
	require.NoError(t, os.Chtimes(filepath.Join(imageDir, imagebuild.MetaFile), old, old))
	rep, err := c.Prune(context.Background(), PruneOptions{Kinds: []Kind{KindProvisioned}, OlderThan: 168 * time.Hour})
	require.NoError(t, err)
	require.Len(t, rep.Removed, 1)
	assert.Equal(t, KindProvisioned, rep.Removed[0].Kind)
	assert.NoDirExists(t, savedDir)
	assert.DirExists(t, imageDir, "another kind is not pruned")

	// A built image in use (its build lock held) is kept.
	unlock, ok := c.tryLock(Entry{Kind: KindImage, Dir: imageDir})
	require.True(t, ok)
	rep, err = c.Prune(context.Background(), PruneOptions{Kinds: []Kind{KindImage}, All: true})
	require.NoError(t, err)
	assert.Empty(t, rep.Removed)
	require.Len(t, rep.InUse, 1)
	unlock()

	// A built image whose disk changed fails verification and is removed.
	f, err := os.OpenFile(filepath.Join(imageDir, imagebuild.DiskFile), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.Write([]byte("tampered"))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	res, err = c.Verify(context.Background(), KindImage)
	require.NoError(t, err)
	require.Len(t, res, 1)
	assert.ErrorIs(t, res[0].Err, download.ErrDigestMismatch)
	assert.NoDirExists(t, imageDir)

	// --all over every kind empties the cache.
	rep, err = c.Prune(context.Background(), PruneOptions{All: true})
	require.NoError(t, err)
	assert.Len(t, rep.Removed, 1, "the download")
	entries, err = c.List()
	require.NoError(t, err)
	assert.Empty(t, entries)
}

func TestParseKinds(t *testing.T) {
	k, err := ParseKinds(nil)
	require.NoError(t, err)
	assert.Equal(t, Kinds(), k)
	k, err = ParseKinds([]string{"images,provisioned", "image"})
	require.NoError(t, err)
	assert.Equal(t, []Kind{KindImage, KindProvisioned}, k)
	_, err = ParseKinds([]string{"overlays"})
	assert.ErrorContains(t, err, `unknown cache kind "overlays"`)
}

// Artifacts drives are listed, verified (an ISO 9660 image with the
// artifacts label; anything else is removed) and pruned; a drive xorriso
// left half-written is listed as incomplete and fails verification.
func TestArtifactDrives(t *testing.T) {
	if _, err := exec.LookPath("xorriso"); err != nil {
		t.Skip("SKIPPED: xorriso not installed")
	}
	root := t.TempDir()
	src := filepath.Join(t.TempDir(), "tool")
	require.NoError(t, os.WriteFile(src, []byte("#!/bin/sh\necho hi\n"), 0o755))
	drives := filepath.Join(root, artifacts.DrivesDir)
	good, err := artifacts.WriteDrive(context.Background(), drives, []artifacts.File{{Name: "tool", Path: src, Digest: sha([]byte("x"))}})
	require.NoError(t, err)
	bad := filepath.Join(drives, "0000.iso")
	require.NoError(t, os.WriteFile(bad, make([]byte, 40000), 0o444))
	require.NoError(t, os.WriteFile(filepath.Join(drives, ".drive-123.iso"), []byte("half"), 0o644))

	c, err := Open(root)
	require.NoError(t, err)
	entries, err := c.List(KindArtifactDrive)
	require.NoError(t, err)
	require.Len(t, entries, 3)
	res, err := c.Verify(context.Background(), KindArtifactDrive)
	require.NoError(t, err)
	byPath := map[string]error{}
	for _, r := range res {
		byPath[filepath.Base(r.Entry.Dir)] = r.Err
	}
	assert.NoError(t, byPath[filepath.Base(good)])
	assert.ErrorContains(t, byPath["0000.iso"], "not an ISO 9660 image")
	assert.ErrorContains(t, byPath[".drive-123.iso"], "incomplete")
	assert.FileExists(t, good)
	assert.NoFileExists(t, bad)

	rep, err := c.Prune(context.Background(), PruneOptions{Kinds: []Kind{KindArtifactDrive}, All: true})
	require.NoError(t, err)
	require.Len(t, rep.Removed, 1)
	assert.NoFileExists(t, good)
	k, err := ParseKinds([]string{"artifact-drives"})
	require.NoError(t, err)
	assert.Equal(t, []Kind{KindArtifactDrive}, k)
}

// A saved guest of another format belongs to another version sharing the
// cache: verify neither calls it corrupt nor removes it.
func TestVerifyLeavesAnotherFormatsSavedGuest(t *testing.T) {
	root := t.TempDir()
	old := filepath.Join(root, "provisioned", "0123456789abcdef01234567")
	require.NoError(t, os.MkdirAll(old, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(old, provisioned.FileMeta),
		[]byte(`{"format":"guestcatalog-provisioned-v2","key":"0123456789abcdef01234567","template":"debian-13-docker","base":"/nonexistent"}`), 0o644))
	c, err := Open(root)
	require.NoError(t, err)
	_, err = c.Verify(context.Background(), KindProvisioned)
	require.NoError(t, err)
	assert.DirExists(t, old)
}

// A saved guest of a moved or copied cache names the old cache's base
// image: verify keeps it while its own files hold (its next resume rebases
// it, provisioned.Entry.Relocate), and removes a saved guest whose base in
// this cache is gone (the failing input).
func TestVerifyKeepsAMovedCachesSavedGuest(t *testing.T) {
	old := filepath.Join(t.TempDir(), "old")
	_, _ = fill(t, old)
	moved := filepath.Join(t.TempDir(), "moved")
	require.NoError(t, os.Rename(old, moved))
	c, err := Open(moved)
	require.NoError(t, err)
	res, err := c.Verify(context.Background(), KindProvisioned)
	require.NoError(t, err)
	require.Len(t, res, 1)
	assert.NoError(t, res[0].Err)
	assert.DirExists(t, res[0].Entry.Dir)

	root := t.TempDir()
	imageDir, savedDir := fill(t, root)
	require.NoError(t, os.RemoveAll(imageDir))
	c, err = Open(root)
	require.NoError(t, err)
	res, err = c.Verify(context.Background(), KindProvisioned)
	require.NoError(t, err)
	require.Len(t, res, 1)
	require.Error(t, res[0].Err)
	assert.Contains(t, res[0].Err.Error(), "its base image is gone")
	assert.NoDirExists(t, savedDir)
}
