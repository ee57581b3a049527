package freshness

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// copyTemplates copies testdata/templates to a temporary directory and
// returns it with the original contents by relative path.
func copyTemplates(t *testing.T) (string, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	orig := map[string]string{}
	err := filepath.WalkDir("testdata/templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("testdata/templates", p)
		orig[rel] = string(b)
		writeFileT(t, filepath.Join(dir, rel), string(b))
		return nil
	})
	require.NoError(t, err)
	return dir, orig
}

func readTree(t *testing.T, dir string, rels map[string]string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for rel := range rels {
		b, err := os.ReadFile(filepath.Join(dir, rel))
		require.NoError(t, err)
		out[rel] = string(b)
	}
	return out
}

// servedDigest is the digest of the fake image the test server serves for
// an upstream URL.
func servedDigest(t *testing.T, url, algo string) string {
	t.Helper()
	rel := strings.TrimPrefix(url, "https://")
	rel = strings.Replace(rel, "download.fedoraproject.org", "dl.fedoraproject.org", 1)
	b, err := os.ReadFile(filepath.Join(upstreamDir, filepath.FromSlash(rel)))
	require.NoError(t, err, url)
	if algo == "sha512" {
		s := sha512.Sum512(b)
		return "sha512:" + hex.EncodeToString(s[:])
	}
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// wantMoves are the upstream moves the fake upstream offers.
var wantMoves = map[string]string{
	"https://cloud-images.ubuntu.com/releases/noble/release-20260705/ubuntu-24.04-server-cloudimg-amd64.img": "https://cloud-images.ubuntu.com/releases/noble/release-20260720/ubuntu-24.04-server-cloudimg-amd64.img",
	"https://cloud-images.ubuntu.com/releases/noble/release-20260705/ubuntu-24.04-server-cloudimg-arm64.img": "https://cloud-images.ubuntu.com/releases/noble/release-20260720/ubuntu-24.04-server-cloudimg-arm64.img",
	// The newest directory has amd64 only: arm64 takes the one before.
	"https://cloud.debian.org/images/cloud/trixie/20260712-2537/debian-13-genericcloud-amd64-20260712-2537.qcow2": "https://cloud.debian.org/images/cloud/trixie/20260802-2580/debian-13-genericcloud-amd64-20260802-2580.qcow2",
	"https://cloud.debian.org/images/cloud/trixie/20260712-2537/debian-13-genericcloud-arm64-20260712-2537.qcow2": "https://cloud.debian.org/images/cloud/trixie/20260726-2551/debian-13-genericcloud-arm64-20260726-2551.qcow2",
	// A respin; the host stays download.fedoraproject.org (the redirector).
	"https://download.fedoraproject.org/pub/fedora/linux/releases/44/Cloud/x86_64/images/Fedora-Cloud-Base-Generic-44-1.7.x86_64.qcow2": "https://download.fedoraproject.org/pub/fedora/linux/releases/44/Cloud/x86_64/images/Fedora-Cloud-Base-Generic-44-1.8.x86_64.qcow2",
	// 9.9/ is listed but has no images yet: a newer build of 9.8.
	"https://dl.rockylinux.org/pub/rocky/9.8/images/x86_64/Rocky-9-GenericCloud-Base-9.8-20260525.0.x86_64.qcow2": "https://dl.rockylinux.org/pub/rocky/9.8/images/x86_64/Rocky-9-GenericCloud-Base-9.8-20260620.0.x86_64.qcow2",
	// AlmaLinux 9.9 is out.
	"https://repo.almalinux.org/almalinux/9.8/cloud/x86_64/images/AlmaLinux-9-GenericCloud-9.8-20260526.x86_64.qcow2": "https://repo.almalinux.org/almalinux/9.9/cloud/x86_64/images/AlmaLinux-9-GenericCloud-9.9-20261112.x86_64.qcow2",
	// 3.23.5, and its x86_64 respin r1.
	"https://dl-cdn.alpinelinux.org/alpine/v3.23/releases/cloud/nocloud_alpine-3.23.4-x86_64-uefi-cloudinit-r0.qcow2":  "https://dl-cdn.alpinelinux.org/alpine/v3.23/releases/cloud/nocloud_alpine-3.23.5-x86_64-uefi-cloudinit-r1.qcow2",
	"https://dl-cdn.alpinelinux.org/alpine/v3.23/releases/cloud/nocloud_alpine-3.23.4-aarch64-uefi-cloudinit-r0.qcow2": "https://dl-cdn.alpinelinux.org/alpine/v3.23/releases/cloud/nocloud_alpine-3.23.5-aarch64-uefi-cloudinit-r0.qcow2",
	"https://geo.mirror.pkgbuild.com/images/v20260715.556894/Arch-Linux-x86_64-cloudimg-20260715.556894.qcow2":         "https://geo.mirror.pkgbuild.com/images/v20260801.560012/Arch-Linux-x86_64-cloudimg-20260801.560012.qcow2",
}

func TestUpdateRewritesOnlyURLsAndDigests(t *testing.T) {
	up := newFakeUpstream(t)
	dir, orig := copyTemplates(t)

	res, err := Update(ctx(t), up.client(), dir, UpdateOptions{})
	require.NoError(t, err)
	require.Len(t, res.Changes, len(wantMoves))
	assert.Equal(t, 1, res.Current, "Fedora aarch64 is at its newest respin")
	require.Len(t, res.Skipped, 1)
	assert.Contains(t, res.Skipped[0].URL, "github.com/mcginty")
	assert.Equal(t, "no release metadata known for github.com", res.Skipped[0].Reason)

	// Every change is the expected move, with the digest of the served file.
	want := map[string]string{} // rel file → expected content
	for rel, content := range orig {
		want[rel] = content
	}
	for _, ch := range res.Changes {
		assert.Equal(t, wantMoves[ch.OldURL], ch.NewURL, "move of %s", ch.OldURL)
		algo, _, _ := strings.Cut(ch.OldDigest, ":")
		assert.Equal(t, servedDigest(t, ch.NewURL, algo), ch.NewDigest, "digest of %s", ch.NewURL)
		assert.NotEmpty(t, ch.From)
		rel, err := filepath.Rel(dir, ch.File)
		require.NoError(t, err)
		require.Equal(t, 1, strings.Count(want[rel], ch.OldURL), "%s appears once in %s", ch.OldURL, rel)
		want[rel] = strings.Replace(want[rel], ch.OldURL, ch.NewURL, 1)
		want[rel] = strings.Replace(want[rel], ch.OldDigest, ch.NewDigest, 1)
	}
	// Byte for byte: comments, order, quoting and flow style survive; only
	// the two scalars of each moved entry differ.
	got := readTree(t, dir, orig)
	for rel := range orig {
		assert.Equal(t, want[rel], got[rel], rel)
	}
	assert.Equal(t, orig["images/opensuse-leap-16.yaml"], got["images/opensuse-leap-16.yaml"])
	assert.NotEqual(t, orig["images/archlinux.yaml"], got["images/archlinux.yaml"])
	assert.Contains(t, got["images/ubuntu-24.04.yaml"], `location: "https://cloud-images.ubuntu.com/releases/noble/release-20260720/ubuntu-24.04-server-cloudimg-arm64.img"`, "double quotes kept")
	assert.Contains(t, got["images/ubuntu-24.04.yaml"], "digest: 'sha256:", "single quotes kept")
	assert.Contains(t, got["images/ubuntu-24.04.yaml"], "   # pinned by hand, 2026-07\n", "trailing comment kept")
	assert.Contains(t, got["images/debian-13.yaml"], "  - {arch: aarch64, location: https://cloud.debian.org/images/cloud/trixie/20260726-2551/", "flow style kept")
	assert.Len(t, res.Files, 7)

	// The result parses, and reads back as the new values.
	ims, err := ScanDir(dir)
	require.NoError(t, err)
	for _, im := range ims {
		for _, ch := range res.Changes {
			if im.File == ch.File && im.Line == ch.Line {
				assert.Equal(t, ch.NewURL, im.Location)
				assert.Equal(t, ch.NewDigest, im.Digest)
			}
		}
	}

	// A second run finds everything current and writes nothing.
	before := readTree(t, dir, orig)
	again, err := Update(ctx(t), up.client(), dir, UpdateOptions{})
	require.NoError(t, err)
	assert.Empty(t, again.Changes)
	assert.Equal(t, len(wantMoves)+1, again.Current)
	assert.Empty(t, again.Files)
	assert.Equal(t, before, readTree(t, dir, orig))

	// And a check of the updated templates passes: the moves are real.
	results := Check(ctx(t), up.client(), ims, CheckOptions{})
	for _, r := range results {
		assert.False(t, r.Failed(), "%s %s: url %s, digest %s %s", r.Name, r.Arch, r.URL.State, r.DigestState, r.Detail)
	}
}

func TestUpdateDryRunWritesNothing(t *testing.T) {
	up := newFakeUpstream(t)
	dir, orig := copyTemplates(t)
	res, err := Update(ctx(t), up.client(), dir, UpdateOptions{DryRun: true})
	require.NoError(t, err)
	assert.Len(t, res.Changes, len(wantMoves))
	assert.Empty(t, res.Files)
	assert.Equal(t, orig, readTree(t, dir, orig))
}

func TestUpdateOneDistro(t *testing.T) {
	up := newFakeUpstream(t)
	dir, orig := copyTemplates(t)
	res, err := Update(ctx(t), up.client(), dir, UpdateOptions{Distros: []string{"debian"}})
	require.NoError(t, err)
	require.Len(t, res.Changes, 2)
	got := readTree(t, dir, orig)
	for rel := range orig {
		if rel == filepath.FromSlash("images/debian-13.yaml") {
			assert.NotEqual(t, orig[rel], got[rel])
		} else {
			assert.Equal(t, orig[rel], got[rel], rel)
		}
	}
	for _, r := range up.requests() {
		assert.Contains(t, r, "cloud.debian.org", "only Debian's metadata is read")
	}

	_, err = Update(ctx(t), up.client(), dir, UpdateOptions{Distros: []string{"gentoo"}})
	assert.EqualError(t, err, `distro "gentoo": images update knows almalinux, alpine, archlinux, debian, fedora, rocky, ubuntu`)
}

func TestUpdateGoesOnWhenOneUpstreamFails(t *testing.T) {
	up := newFakeUpstream(t)
	up.failPath("https://cloud-images.ubuntu.com/releases/streams/v1/com.ubuntu.cloud:released:download.json", 500)
	dir, orig := copyTemplates(t)
	res, err := Update(ctx(t), up.client(), dir, UpdateOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(dir, "images/ubuntu-24.04.yaml")+":15: finding the newest ubuntu release of ubuntu-24.04-server-cloudimg-amd64.img: GET ")
	assert.Contains(t, err.Error(), "500 Internal Server Error")
	assert.Len(t, res.Changes, len(wantMoves)-2)
	got := readTree(t, dir, orig)
	assert.Equal(t, orig["images/ubuntu-24.04.yaml"], got["images/ubuntu-24.04.yaml"])
	assert.NotEqual(t, orig["images/debian-13.yaml"], got["images/debian-13.yaml"])
}

func TestUpdateReportsMissingMetadata(t *testing.T) {
	up := newFakeUpstream(t)
	up.failPath("https://cloud.debian.org/images/cloud/trixie/", 404)
	dir, _ := copyTemplates(t)
	_, err := Update(ctx(t), up.client(), dir, UpdateOptions{Distros: []string{"debian"}})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrNotFound)
	assert.Contains(t, err.Error(), "finding the newest debian release of debian-13-genericcloud-amd64-20260712-2537.qcow2")
}

func TestRewrite(t *testing.T) {
	src := []byte("# head\nimages:\n  - location: http://a/1.img # c\n    digest: \"sha256:11\"\n  - {location: 'http://b/1.img', digest: sha256:22}\n")
	ims, err := scanFile("x.yaml", src)
	require.NoError(t, err)
	require.Len(t, ims, 2)
	out, err := rewrite(src, []edit{
		{ims[0].loc, "http://a/2.img"}, {ims[0].dig, "sha256:33"},
		{ims[1].loc, "http://b/it's.img"}, {ims[1].dig, "sha256:44"},
	})
	require.NoError(t, err)
	assert.Equal(t, "# head\nimages:\n  - location: http://a/2.img # c\n    digest: \"sha256:33\"\n  - {location: 'http://b/it''s.img', digest: sha256:44}\n", string(out))

	// The scalar moved since it was parsed: found by its value on the line.
	moved := *ims[0].loc
	moved.Column += 3
	out, err = rewrite(src, []edit{{&moved, "http://a/3.img"}})
	require.NoError(t, err)
	assert.Contains(t, string(out), "location: http://a/3.img # c")

	// Not there at all: an error, nothing written.
	gone := scalar{Line: 1, Column: 1, Value: "http://nowhere"}
	_, err = rewrite(src, []edit{{&gone, "x"}})
	assert.EqualError(t, err, "line 1: cannot find http://nowhere to rewrite it (multi-line scalars are not supported)")
}

func TestRenderKeepsScalarsValid(t *testing.T) {
	assert.Equal(t, "https://x/y.img", render("https://x/y.img", 0))
	assert.Equal(t, `"a: b"`, render("a: b", 0), "not plain-safe: double-quoted")
	assert.Equal(t, `"#x"`, render("#x", 0))
	assert.Equal(t, `"say \"hi\""`, render(`say "hi"`, '"'))
	assert.Equal(t, `'it''s'`, render("it's", '\''))
}
