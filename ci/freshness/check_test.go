package freshness

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
)

func fixtureImages(t *testing.T) []Image {
	t.Helper()
	ims, err := ScanDir("testdata/templates")
	require.NoError(t, err)
	return ims
}

func TestScanDir(t *testing.T) {
	ims := fixtureImages(t)
	require.Len(t, ims, 16, "every entry with a location; build recipes and engines have none")
	first := ims[0]
	assert.Equal(t, "almalinux-9", first.Name, "fragment name without images/")
	assert.Equal(t, "x86_64", first.Arch)
	assert.Equal(t, "testdata/templates/images/almalinux-9.yaml", first.File)
	assert.Equal(t, 11, first.Line, "the line of location:")

	var flow *Image
	for i := range ims {
		if strings.Contains(ims[i].Location, "debian-13-genericcloud-arm64") {
			flow = &ims[i]
		}
	}
	require.NotNil(t, flow, "flow-style entries are read too")
	assert.Equal(t, "aarch64", flow.Arch)
	assert.True(t, flow.Pinned())
}

func TestScanDirReportsBrokenYAML(t *testing.T) {
	dir := t.TempDir()
	writeFileT(t, dir+"/images/bad.yaml", "images:\n  - arch: x86_64\n    location: [unclosed\n")
	_, err := ScanDir(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bad.yaml")
}

func TestCheckAgainstFakeUpstream(t *testing.T) {
	up := newFakeUpstream(t)
	results := Check(ctx(t), up.client(), fixtureImages(t), CheckOptions{})
	require.Len(t, results, 16)

	type verdict struct {
		url    URLState
		digest DigestState
	}
	got := map[string]verdict{}
	for _, r := range results {
		got[path.Base(path.Dir(r.Location))+"/"+path.Base(r.Location)] = verdict{r.URL.State, r.DigestState}
	}
	assert.Equal(t, map[string]verdict{
		"images/AlmaLinux-9-GenericCloud-9.8-20260526.x86_64.qcow2":         {URLOK, DigestOK},
		"cloud/nocloud_alpine-3.23.4-x86_64-uefi-cloudinit-r0.qcow2":        {URLOK, DigestOK},
		"cloud/nocloud_alpine-3.23.4-aarch64-uefi-cloudinit-r0.qcow2":       {URLOK, DigestChanged},
		"v20260715.556894/Arch-Linux-x86_64-cloudimg-20260715.556894.qcow2": {URLOK, DigestOK},
		"v20220323/Arch-Linux-aarch64-cloudimg-20220323.0.qcow2":            {URLOK, DigestUnpublished},
		"20260712-2537/debian-13-genericcloud-amd64-20260712-2537.qcow2":    {URLOK, DigestOK},
		"20260712-2537/debian-13-genericcloud-arm64-20260712-2537.qcow2":    {URLOK, DigestOK},
		"latest/debian-13-genericcloud-amd64-daily.qcow2":                   {URLOK, DigestUnpinned},
		"images/Fedora-Cloud-Base-Generic-44-1.7.x86_64.qcow2":              {URLDead, DigestMissing},
		"images/Fedora-Cloud-Base-Generic-44-1.7.aarch64.qcow2":             {URLOK, DigestOK},
		"appliances/Leap-16.0-Minimal-VM.x86_64-Cloud.qcow2":                {URLOK, DigestUnpinned},
		"x86_64/Rocky-9-GenericCloud-Base-9.8-20260525.0.x86_64.qcow2":      {URLOK, DigestOK},
		"x86_64/Rocky-9-GenericCloud.latest.x86_64.qcow2":                   {URLOK, DigestUnpinned},
		"release-20260705/ubuntu-24.04-server-cloudimg-amd64.img":           {URLOK, DigestOK},
		"release-20260705/ubuntu-24.04-server-cloudimg-arm64.img":           {URLOK, DigestOK},
		"release/ubuntu-24.04-server-cloudimg-amd64.img":                    {URLOK, DigestUnpinned},
	}, got)

	s := Summarize(results)
	assert.Equal(t, Summary{Images: 16, OK: 9, Failed: 2, Warned: 5}, s)

	byURL := map[string]Result{}
	for _, r := range results {
		byURL[r.Location] = r
	}
	ub := byURL["https://cloud-images.ubuntu.com/releases/noble/release-20260705/ubuntu-24.04-server-cloudimg-amd64.img"]
	assert.Equal(t, DigestOK, ub.DigestState)
	assert.Equal(t, "https://cloud-images.ubuntu.com/releases/noble/release-20260705/SHA256SUMS", ub.Checksums)
	assert.Equal(t, ub.Digest, ub.Published)

	fed := byURL["https://download.fedoraproject.org/pub/fedora/linux/releases/44/Cloud/x86_64/images/Fedora-Cloud-Base-Generic-44-1.7.x86_64.qcow2"]
	assert.Equal(t, http.StatusNotFound, fed.URL.Status, "the redirect was followed to the mirror's 404")
	assert.True(t, fed.Failed())
	assert.Equal(t, "checksum file not found: https://download.fedoraproject.org/pub/fedora/linux/releases/44/Cloud/x86_64/images/Fedora-Cloud-44-1.7-x86_64-CHECKSUM", fed.Detail)

	alp := byURL["https://dl-cdn.alpinelinux.org/alpine/v3.23/releases/cloud/nocloud_alpine-3.23.4-aarch64-uefi-cloudinit-r0.qcow2"]
	assert.True(t, alp.Failed())
	assert.Contains(t, alp.Detail, "upstream publishes sha512:")
	assert.NotEqual(t, alp.Digest, alp.Published)

	gh := byURL["https://github.com/mcginty/arch-boxes-arm/releases/download/v20220323/Arch-Linux-aarch64-cloudimg-20220323.0.qcow2"]
	assert.Equal(t, ProbeResult{State: URLOK, Status: http.StatusPartialContent, Method: "GET"}, gh.URL, "405 on HEAD: ranged GET")
	assert.Contains(t, up.requests(), "GET /github.com/mcginty/arch-boxes-arm/releases/download/v20220323/Arch-Linux-aarch64-cloudimg-20220323.0.qcow2 bytes=0-0")
	assert.False(t, gh.Failed())
	assert.True(t, gh.Warned())

	// Probes never download an image: only HEAD or a 1-byte range.
	for _, r := range up.requests() {
		if strings.HasPrefix(r, "GET ") && (strings.HasSuffix(r, ".qcow2") || strings.HasSuffix(r, ".img")) {
			t.Errorf("downloaded an image: %s", r)
		}
	}
}

func TestCheckTableAndJSON(t *testing.T) {
	up := newFakeUpstream(t)
	results := Check(ctx(t), up.client(), fixtureImages(t), CheckOptions{Concurrency: 2})

	var table bytes.Buffer
	require.NoError(t, WriteTable(&table, results))
	out := table.String()
	lines := strings.Split(out, "\n")
	assert.Regexp(t, `^IMAGE\s+ARCH\s+URL\s+DIGEST\s+FILE$`, lines[0])
	assert.Regexp(t, `(?m)^fedora-44\s+x86_64\s+dead \(404\)\s+missing\s+Fedora-Cloud-Base-Generic-44-1.7.x86_64.qcow2$`, out)
	assert.Regexp(t, `(?m)^archlinux\s+aarch64\s+ok \(206, ranged GET\)\s+unpublished\s+`, out)
	assert.Contains(t, out, "FAIL fedora-44 x86_64 (testdata/templates/images/fedora-44.yaml:12): URL dead (404); digest missing")
	assert.Contains(t, out, "FAIL alpine-3.23 aarch64 (testdata/templates/images/alpine-3.23.yaml:16): digest changed: upstream publishes sha512:")
	assert.Contains(t, out, "warning opensuse-leap-16 x86_64")
	assert.True(t, strings.HasSuffix(out, "\n16 image URLs: 9 ok, 2 failed, 5 warnings\n"), out)

	var js bytes.Buffer
	require.NoError(t, WriteJSON(&js, results))
	var decoded struct {
		Results []map[string]any `json:"results"`
		Failed  bool             `json:"failed"`
		Summary Summary          `json:"summary"`
	}
	require.NoError(t, json.Unmarshal(js.Bytes(), &decoded))
	assert.True(t, decoded.Failed)
	assert.Len(t, decoded.Results, 16)
	assert.Equal(t, 2, decoded.Summary.Failed)
	first := decoded.Results[0]
	for _, k := range []string{"image", "arch", "url", "digest", "urlStatus", "digestStatus", "published", "checksums", "file", "line"} {
		assert.Contains(t, first, k)
	}

	var md bytes.Buffer
	require.NoError(t, WriteMarkdown(&md, results))
	assert.Contains(t, md.String(), "**9 ok**, **2 failed**, **5 warnings** (of 16 image URLs)")
	assert.Contains(t, md.String(), "| ❌ | fedora-44 | x86_64 | dead (404) | missing |")
}

func TestCheckAllGood(t *testing.T) {
	up := newFakeUpstream(t)
	var ok []Image
	for _, im := range fixtureImages(t) {
		if strings.Contains(im.Location, "ubuntu") || strings.Contains(im.Location, "debian") {
			ok = append(ok, im)
		}
	}
	results := Check(ctx(t), up.client(), ok, CheckOptions{})
	s := Summarize(results)
	assert.Equal(t, 0, s.Failed)
	assert.Equal(t, 6, s.Images)
	assert.Equal(t, 2, s.Warned, "the two rolling fallbacks are unpinned")
}

func TestCheckDedupesByURL(t *testing.T) {
	up := newFakeUpstream(t)
	ims := fixtureImages(t)
	twice := append(append([]Image(nil), ims...), ims...)
	results := Check(ctx(t), up.client(), twice, CheckOptions{})
	assert.Len(t, results, 16)
}

func TestCheckServerErrorsAreRetriedThenReported(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, RetryWait: time.Millisecond, Attempts: 3}
	im := Image{Name: "debian-13", Arch: "x86_64",
		Location: "https://cloud.debian.org/images/cloud/trixie/20260712-2537/debian-13-genericcloud-amd64-20260712-2537.qcow2",
		Digest:   "sha512:" + strings.Repeat("0", 128)}
	r := Check(ctx(t), c, []Image{im}, CheckOptions{})[0]
	assert.Equal(t, URLError, r.URL.State)
	assert.Equal(t, 503, r.URL.Status)
	assert.Equal(t, DigestError, r.DigestState)
	assert.True(t, r.Failed(), "an image that cannot be checked is not ok")
	assert.Equal(t, int32(6), hits.Load(), "3 attempts for the HEAD, 3 for SHA512SUMS")
}

func TestCheckNoAnswer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	c := &Client{BaseURL: url, RetryWait: time.Millisecond, Attempts: 2}
	r := Check(ctx(t), c, []Image{{Name: "x", Arch: "x86_64", Location: "https://example.org/x.qcow2", NoDigest: "test"}}, CheckOptions{})[0]
	assert.Equal(t, URLError, r.URL.State)
	assert.Contains(t, r.URL.Err, "connection refused")
	assert.Equal(t, DigestUnpinned, r.DigestState)
}

func TestFromTemplates(t *testing.T) {
	ts := []*catalog.Template{
		{Name: "debian-13-docker", Distro: &catalog.Distro{Name: "debian", Release: "13"}, Images: []catalog.Image{
			{Arch: "x86_64", Location: "https://a/x.qcow2", Digest: "sha256:00"},
			{Arch: "x86_64", Build: &catalog.BuildRecipe{Suite: "trixie"}},
		}},
		{Name: "debian-13-podman", Distro: &catalog.Distro{Name: "debian", Release: "13"}, Images: []catalog.Image{
			{Arch: "x86_64", Location: "https://a/x.qcow2", Digest: "sha256:00"},
		}},
		{Name: "archlinux-docker", Distro: &catalog.Distro{Name: "archlinux"}, Images: []catalog.Image{
			{Arch: "x86_64", Location: "https://b/latest.qcow2", NoDigest: "rolling"},
		}},
	}
	ims := Dedupe(FromTemplates(ts))
	require.Len(t, ims, 2)
	assert.Equal(t, Image{Name: "debian-13", Arch: "x86_64", Location: "https://a/x.qcow2", Digest: "sha256:00"}, ims[0])
	assert.Equal(t, "archlinux", ims[1].Name)
	assert.False(t, ims[1].Pinned())
}

func TestClientResolve(t *testing.T) {
	ms, err := ParseMirrors([]string{"https://cloud.debian.org/=http://m/debian/", "https://cloud.debian.org/images/cloud/=http://m/cloud/"})
	require.NoError(t, err)
	c := &Client{Mirrors: ms, BaseURL: "http://127.0.0.1:9/"}
	assert.Equal(t, "http://m/cloud/trixie/x", c.Resolve("https://cloud.debian.org/images/cloud/trixie/x"), "longest prefix")
	assert.Equal(t, "http://m/debian/other", c.Resolve("https://cloud.debian.org/other"))
	assert.Equal(t, "http://127.0.0.1:9/cloud-images.ubuntu.com/releases/streams/v1/com.ubuntu.cloud:released:download.json",
		c.Resolve("https://cloud-images.ubuntu.com/releases/streams/v1/com.ubuntu.cloud:released:download.json"), "base URL for the rest")
	assert.Equal(t, "https://x/y", (&Client{}).Resolve("https://x/y"))

	_, err = ParseMirrors([]string{"nope"})
	assert.EqualError(t, err, `mirror "nope": want PREFIX=MIRROR, e.g. https://cloud.debian.org/=http://mirror.local/debian-cloud/`)
}

func TestClientGetFetchesEachFileOnce(t *testing.T) {
	up := newFakeUpstream(t)
	c := up.client()
	u := "https://cloud-images.ubuntu.com/releases/noble/release-20260705/SHA256SUMS"
	for range 3 {
		b, err := c.Get(ctx(t), u)
		require.NoError(t, err)
		assert.NotEmpty(t, b)
	}
	n := 0
	for _, r := range up.requests() {
		if strings.HasSuffix(r, "/SHA256SUMS") {
			n++
		}
	}
	assert.Equal(t, 1, n)

	_, err := c.Get(ctx(t), "https://cloud-images.ubuntu.com/nope")
	assert.ErrorIs(t, err, ErrNotFound)
	var he *HTTPError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, 404, he.Status)
}
