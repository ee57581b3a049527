package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/download"
	"github.com/guestcatalog/guestcatalog/framework/hostcheck"
	"github.com/guestcatalog/guestcatalog/framework/imagebuild"
)

var host = catalog.HostArch()

func otherArch() string {
	if host == catalog.ArchX8664 {
		return catalog.ArchAarch64
	}
	return catalog.ArchX8664
}

// qcow2Header is a minimal qcow2 v3 header (what Sniff reads); with a
// backing file name after it when backing != "".
func qcow2Header(size uint64, backing string) []byte {
	h := make([]byte, 512)
	copy(h, "QFI\xfb")
	be := binary.BigEndian
	be.PutUint32(h[4:], 3)
	if backing != "" {
		be.PutUint64(h[8:], 200)
		be.PutUint32(h[16:], uint32(len(backing)))
		copy(h[200:], backing)
	}
	be.PutUint32(h[20:], 16) // cluster bits
	be.PutUint64(h[24:], size)
	be.PutUint32(h[100:], 104) // header length
	return h
}

// diskFile writes a real disk image: a qcow2 made by qemu-img when it is
// installed (Inspect then asks qemu-img), else a qcow2 header.
func diskFile(t *testing.T, format string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk."+format)
	switch format {
	case FormatRaw:
		require.NoError(t, os.WriteFile(p, make([]byte, 1<<20), 0o644))
	case FormatQcow2:
		if qi, err := exec.LookPath("qemu-img"); err == nil {
			out, err := exec.Command(qi, "create", "-q", "-f", "qcow2", p, "64M").CombinedOutput()
			require.NoError(t, err, string(out))
		} else {
			require.NoError(t, os.WriteFile(p, qcow2Header(64<<20, ""), 0o644))
		}
	}
	return p
}

func sha256Of(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// fakeFetcher answers Fetch from a table: a file to serve, or an error.
type fakeFetcher struct {
	mu    sync.Mutex
	calls []string
	files map[string]string
	errs  map[string]error
}

func (f *fakeFetcher) Fetch(ctx context.Context, url, digest string, opts ...download.Option) (download.Result, error) {
	f.mu.Lock()
	f.calls = append(f.calls, url)
	f.mu.Unlock()
	if err := f.errs[url]; err != nil {
		return download.Result{}, fmt.Errorf("fetching %s: %w", url, err)
	}
	p, ok := f.files[url]
	if !ok {
		return download.Result{}, &download.HTTPError{URL: url, StatusCode: 404}
	}
	return download.Result{Path: p, DataPath: p, Status: download.Downloaded, URL: url, Source: url,
		Digest: digest, Verified: digest != "", Size: 1}, nil
}

// fakeBuilder records what it was asked to build and returns a fake image.
type fakeBuilder struct {
	calls  int
	recipe catalog.BuildRecipe
	extra  []string
	err    error
	status imagebuild.Status
}

func (b *fakeBuilder) Build(ctx context.Context, r catalog.BuildRecipe, extra []string, opts ...imagebuild.Option) (*imagebuild.Artifact, error) {
	b.calls++
	b.recipe, b.extra = r, extra
	if b.err != nil {
		return nil, b.err
	}
	st := b.status
	if st == "" {
		st = imagebuild.StatusBuilt
	}
	return &imagebuild.Artifact{Disk: "/cache/images/k/disk.qcow2", Kernel: "/cache/images/k/vmlinuz",
		Initrd: "/cache/images/k/initrd.img", Append: imagebuild.KernelAppend(host), Key: "k", Status: st,
		Digest: "sha256:" + fmt.Sprintf("%064d", 1), VirtualSize: 1536 << 20}, nil
}

const (
	urlA = "https://images.example/a.qcow2"
	urlB = "https://images.example/b.img"
	urlC = "https://images.example/c.raw"
)

var (
	digestA = "sha512:" + fmt.Sprintf("%0128d", 0)
	digestB = "sha256:" + fmt.Sprintf("%064d", 2)
)

// template is a Debian template with two URL entries and a build entry for
// the host arch, and one entry for the other arch.
func template() *catalog.Template {
	return &catalog.Template{
		Name:   "debian-13-containerd",
		Distro: &catalog.Distro{Name: "debian", Release: "13", Family: catalog.FamilyDebian},
		Images: []catalog.Image{
			{Arch: otherArch(), Location: "https://images.example/other-arch.qcow2", Digest: digestA},
			{Arch: host, Location: urlA, Digest: digestA, Firmware: catalog.FirmwareUEFI},
			{Arch: host, Location: urlB, NoDigest: "rolling"},
			{Arch: host, Build: &catalog.BuildRecipe{Suite: "trixie", Packages: []string{"systemd"}, Bake: true}},
		},
		Provision: []catalog.Step{
			{Mode: catalog.ModePackages, Packages: []string{"containerd", "runc"}, When: &catalog.When{Families: []string{catalog.FamilyDebian}}},
			{Mode: catalog.ModePackages, Packages: []string{"containerd-fedora"}, When: &catalog.When{Distros: []string{"fedora"}}},
			{Mode: catalog.ModePackages, Packages: []string{"other-arch-only"}, When: &catalog.When{Arches: []string{otherArch()}}},
			{Mode: catalog.ModeSystem, Script: "systemctl enable containerd"},
			{Mode: catalog.ModePackages, Packages: []string{"curl"}},
		},
	}
}

func TestOnlineTakesTheFirstEntryThatDownloads(t *testing.T) {
	qcow := diskFile(t, FormatQcow2)
	f := &fakeFetcher{files: map[string]string{urlA: qcow, urlB: diskFile(t, FormatRaw)}}
	b := &fakeBuilder{}
	a, err := Resolve(context.Background(), template(), host, WithFetcher(f), WithBuilder(b.Build), WithCacheDir(t.TempDir()))
	require.NoError(t, err)
	assert.Equal(t, []string{urlA}, f.calls, "the other arch's entry is not tried")
	assert.Zero(t, b.calls)
	assert.Equal(t, qcow, a.Disk)
	assert.Equal(t, FormatQcow2, a.Format)
	assert.Equal(t, int64(64<<20), a.VirtualSize)
	assert.Equal(t, urlA, a.Source)
	assert.Equal(t, digestA, a.Digest, "the upstream digest")
	assert.True(t, a.Verified)
	assert.Equal(t, catalog.FirmwareUEFI, a.Firmware)
	assert.Equal(t, StatusDownloaded, a.Status)
	assert.Equal(t, 0, a.Index)
	assert.Empty(t, a.Kernel, "downloaded images boot through firmware")
	assert.Nil(t, a.Recipe)
	assert.Empty(t, a.Skipped)
}

func TestOnlineFallsBackOnAFailedDownloadAndDetectsTheFormat(t *testing.T) {
	// urlA answers 404, urlB (an "*.img" name) holds a qcow2.
	qcow := diskFile(t, FormatQcow2)
	f := &fakeFetcher{files: map[string]string{urlB: qcow}}
	a, err := Resolve(context.Background(), template(), host, WithFetcher(f), WithBuilder((&fakeBuilder{}).Build), WithCacheDir(t.TempDir()))
	require.NoError(t, err)
	assert.Equal(t, []string{urlA, urlB}, f.calls)
	assert.Equal(t, urlB, a.Source)
	assert.Equal(t, FormatQcow2, a.Format, "*.img files are qcow2")
	assert.False(t, a.Verified, "no digest pinned")
	assert.Equal(t, catalog.FirmwareBIOS, a.Firmware, "default firmware")
	require.Len(t, a.Skipped, 1)
	assert.Equal(t, urlA, a.Skipped[0].Source)
	assert.Contains(t, a.Skipped[0].Reason, "404")

	// A network error falls back too, down to the build entry.
	f = &fakeFetcher{errs: map[string]error{urlA: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}}
	b := &fakeBuilder{}
	a, err = Resolve(context.Background(), template(), host, WithFetcher(f), WithBuilder(b.Build), WithCacheDir(t.TempDir()))
	require.NoError(t, err)
	assert.Equal(t, []string{urlA, urlB}, f.calls)
	assert.Equal(t, 1, b.calls)
	assert.Equal(t, "build:trixie", a.Source)
	require.Len(t, a.Skipped, 2)
	assert.Contains(t, a.Skipped[0].Reason, "connection refused")
}

func TestDigestMismatchIsAnErrorNotAFallback(t *testing.T) {
	f := &fakeFetcher{
		errs:  map[string]error{urlA: &download.DigestMismatchError{}},
		files: map[string]string{urlB: diskFile(t, FormatQcow2)},
	}
	b := &fakeBuilder{}
	_, err := Resolve(context.Background(), template(), host, WithFetcher(f), WithBuilder(b.Build), WithCacheDir(t.TempDir()))
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrDigestMismatch)
	assert.Equal(t, []string{urlA}, f.calls, "no other entry is tried")
	assert.Zero(t, b.calls)
}

func TestOfflineUsesBuildEntriesOnlyAndBakesThePackagesSteps(t *testing.T) {
	f := &fakeFetcher{files: map[string]string{urlA: diskFile(t, FormatQcow2)}}
	b := &fakeBuilder{}
	a, err := Resolve(context.Background(), template(), host, WithOffline(), WithFetcher(f), WithBuilder(b.Build), WithCacheDir(t.TempDir()))
	require.NoError(t, err)
	assert.Empty(t, f.calls, "offline: nothing downloaded")
	assert.Equal(t, 1, b.calls)
	assert.Equal(t, "trixie", b.recipe.Suite)
	assert.Equal(t, []string{"containerd", "runc", "curl"}, b.extra, "debian packages steps for this arch, in order")
	assert.Equal(t, StatusBuilt, a.Status)
	assert.Equal(t, FormatQcow2, a.Format)
	assert.Equal(t, "build:trixie", a.Source)
	assert.Equal(t, "/cache/images/k/disk.qcow2", a.Disk)
	assert.Equal(t, int64(1536<<20), a.VirtualSize)
	assert.Equal(t, "/cache/images/k/vmlinuz", a.Kernel)
	assert.Equal(t, "/cache/images/k/initrd.img", a.Initrd)
	assert.Contains(t, a.Append, "root=LABEL=root")
	assert.Equal(t, "sha256:"+fmt.Sprintf("%064d", 1), a.Digest)
	require.NotNil(t, a.Recipe)
	assert.Equal(t, "trixie", a.Recipe.Suite)
	assert.Equal(t, 2, a.Index)
	require.Len(t, a.Skipped, 2)
	assert.Contains(t, a.Skipped[0].Reason, "offline")

	// A cached build reports from-cache.
	b = &fakeBuilder{status: imagebuild.StatusFromCache}
	a, err = Resolve(context.Background(), template(), host, WithOffline(), WithBuilder(b.Build), WithCacheDir(t.TempDir()))
	require.NoError(t, err)
	assert.Equal(t, StatusFromCache, a.Status)

	// Without bake, nothing extra is asked for.
	tt := template()
	tt.Images[3].Build.Bake = false
	b = &fakeBuilder{}
	_, err = Resolve(context.Background(), tt, host, WithOffline(), WithBuilder(b.Build), WithCacheDir(t.TempDir()))
	require.NoError(t, err)
	assert.Nil(t, b.extra)
}

func TestNoUsableImageListsEveryReason(t *testing.T) {
	tt := template()
	tt.Images = tt.Images[:3] // no build entry
	_, err := Resolve(context.Background(), tt, host, WithOffline(), WithCacheDir(t.TempDir()))
	require.ErrorIs(t, err, ErrNoImage)
	assert.Contains(t, err.Error(), "images[0] "+urlA+": offline")
	assert.Contains(t, err.Error(), "images[1] "+urlB+": offline")

	// A build that fails (tools missing) falls back, and is listed.
	b := &fakeBuilder{err: fmt.Errorf("x: %w", imagebuild.ErrToolMissing)}
	_, err = Resolve(context.Background(), template(), host, WithOffline(), WithBuilder(b.Build), WithCacheDir(t.TempDir()))
	require.ErrorIs(t, err, ErrNoImage)
	assert.ErrorIs(t, err, imagebuild.ErrToolMissing)

	// An invalid recipe is the template's bug: reported as is.
	b = &fakeBuilder{err: fmt.Errorf("x: %w", imagebuild.ErrInvalidRecipe)}
	_, err = Resolve(context.Background(), template(), host, WithOffline(), WithBuilder(b.Build), WithCacheDir(t.TempDir()))
	require.ErrorIs(t, err, imagebuild.ErrInvalidRecipe)
	assert.NotErrorIs(t, err, ErrNoImage)

	_, err = Resolve(context.Background(), &catalog.Template{Name: "empty"}, host)
	assert.ErrorIs(t, err, ErrNoImage)
	assert.ErrorContains(t, err, "template empty has no image for "+host)
}

// A build entry for another arch is built (through qemu-user); when this
// host cannot (no binfmt registration), the entry is skipped as
// unavailable, not broken.
func TestABuildEntryForAnotherArchIsBuiltOrSkipped(t *testing.T) {
	tt := &catalog.Template{Name: "t", Images: []catalog.Image{{Arch: otherArch(), Build: &catalog.BuildRecipe{Suite: "trixie"}}}}
	b := &fakeBuilder{}
	a, err := Resolve(context.Background(), tt, otherArch(), WithOffline(), WithBuilder(b.Build), WithCacheDir(t.TempDir()))
	require.NoError(t, err)
	assert.Equal(t, 1, b.calls)
	assert.Equal(t, otherArch(), a.Arch)

	b = &fakeBuilder{err: fmt.Errorf("building: %w: %w", imagebuild.ErrForeignArch, hostcheck.ErrBinfmt)}
	_, err = Resolve(context.Background(), tt, otherArch(), WithOffline(), WithBuilder(b.Build), WithCacheDir(t.TempDir()))
	require.ErrorIs(t, err, ErrNoImage)
	assert.ErrorIs(t, err, imagebuild.ErrForeignArch)
	reason, ok := Unavailable(err)
	assert.True(t, ok, "a host that cannot emulate the arch makes the image unavailable, not broken")
	assert.Contains(t, reason, "foreign-arch")
}

func TestUnsafeOrUnsupportedDownloadsAreRefused(t *testing.T) {
	backed := filepath.Join(t.TempDir(), "backed.qcow2")
	if qi, err := exec.LookPath("qemu-img"); err == nil {
		base := diskFile(t, FormatQcow2)
		out, err := exec.Command(qi, "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", backed).CombinedOutput()
		require.NoError(t, err, string(out))
	} else {
		require.NoError(t, os.WriteFile(backed, qcow2Header(1<<20, "/etc/shadow"), 0o644))
	}
	f := &fakeFetcher{files: map[string]string{urlA: backed, urlB: diskFile(t, FormatQcow2)}}
	_, err := Resolve(context.Background(), template(), host, WithFetcher(f), WithCacheDir(t.TempDir()))
	require.ErrorIs(t, err, ErrUnsafeImage)
	assert.Equal(t, []string{urlA}, f.calls, "not a fallback")

	vmdk := filepath.Join(t.TempDir(), "x.vmdk")
	require.NoError(t, os.WriteFile(vmdk, append([]byte("KDMV"), make([]byte, 1020)...), 0o644))
	d, err := Sniff(vmdk)
	require.NoError(t, err)
	assert.ErrorIs(t, d.Check(), ErrUnsupportedFormat)
}

func TestCancelledContextStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := &fakeFetcher{}
	_, err := Resolve(ctx, template(), host, WithFetcher(f), WithCacheDir(t.TempDir()))
	assert.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, f.calls)
}

func TestSniff(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o644))
		return p
	}
	d, err := Sniff(write("a.qcow2", qcow2Header(10<<30, "")))
	require.NoError(t, err)
	assert.Equal(t, &DiskInfo{Format: FormatQcow2, VirtualSize: 10 << 30, By: "header"}, d)
	assert.NoError(t, d.Check())

	d, err = Sniff(write("b.qcow2", qcow2Header(1<<30, "/var/lib/secret.img")))
	require.NoError(t, err)
	assert.Equal(t, "/var/lib/secret.img", d.BackingFile)
	assert.ErrorIs(t, d.Check(), ErrUnsafeImage)

	h := qcow2Header(1<<30, "")
	binary.BigEndian.PutUint64(h[72:], 1<<2)
	d, err = Sniff(write("c.qcow2", h))
	require.NoError(t, err)
	assert.ErrorIs(t, d.Check(), ErrUnsafeImage, "external data file")

	d, err = Sniff(write("d.raw", []byte("\xeb\x63\x90 an MBR")))
	require.NoError(t, err)
	assert.Equal(t, FormatRaw, d.Format)
	assert.Equal(t, int64(10), d.VirtualSize)

	_, err = Sniff(write("e.qcow2", []byte("QFI\xfb\x00\x00\x00\x03")))
	assert.ErrorContains(t, err, "truncated qcow2 header")
}

func TestParseQemuImgInfo(t *testing.T) {
	d, err := parseQemuImgInfo([]byte(`{"virtual-size": 2361393152, "filename": "noble.img", "format": "qcow2",
		"backing-filename": "base.qcow2", "format-specific": {"type": "qcow2", "data": {"compat": "1.1", "data-file": "x.raw"}}}`))
	require.NoError(t, err)
	assert.Equal(t, &DiskInfo{Format: "qcow2", VirtualSize: 2361393152, BackingFile: "base.qcow2", DataFile: "x.raw", By: "qemu-img"}, d)
	_, err = parseQemuImgInfo([]byte(`{}`))
	assert.Error(t, err)
}

// The real download cache against a real HTTP server on 127.0.0.1: the
// first entry is a 404, the second is served and verified; a second
// Resolve is a cache hit without any request.
func TestResolveWithTheDownloadCacheAndARealServer(t *testing.T) {
	qcow := diskFile(t, FormatQcow2)
	body, err := os.ReadFile(qcow)
	require.NoError(t, err)
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.URL.Path != "/noble-server-cloudimg-amd64.img" {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "x.img", fileTime(t, qcow), bytesReader(body))
	}))
	defer srv.Close()
	tt := &catalog.Template{Name: "ubuntu-24.04", Images: []catalog.Image{
		{Arch: host, Location: srv.URL + "/gone/noble.img", Digest: sha256Of(t, qcow)},
		{Arch: host, Location: srv.URL + "/noble-server-cloudimg-amd64.img", Digest: sha256Of(t, qcow)},
	}}
	cache := t.TempDir()
	a, err := Resolve(context.Background(), tt, host, WithCacheDir(cache))
	require.NoError(t, err)
	assert.Equal(t, StatusDownloaded, a.Status)
	assert.Equal(t, FormatQcow2, a.Format)
	assert.True(t, a.Verified)
	assert.Equal(t, sha256Of(t, qcow), a.Digest)
	assert.Equal(t, sha256Of(t, qcow), sha256Of(t, a.Disk), "the cached file is the served one")
	require.Len(t, a.Skipped, 1)
	assert.Contains(t, a.Skipped[0].Reason, "404")
	assert.Equal(t, filepath.Join(cache, "downloads"), filepath.Dir(filepath.Dir(a.Disk)), "under the shared cache root")

	// The same again comes from the cache (the 404 entry is still tried).
	n := requests.Load()
	a, err = Resolve(context.Background(), tt, host, WithCacheDir(cache))
	require.NoError(t, err)
	assert.Equal(t, StatusFromCache, a.Status)
	assert.Equal(t, n+1, requests.Load(), "only the 404 entry was asked again")

	// A pinned digest that does not match: an error, never a fallback.
	tt.Images[0] = catalog.Image{Arch: host, Location: srv.URL + "/noble-server-cloudimg-amd64.img?v=2", Digest: "sha256:" + fmt.Sprintf("%064d", 7)}
	_, err = Resolve(context.Background(), tt, host, WithCacheDir(t.TempDir()))
	assert.ErrorIs(t, err, ErrDigestMismatch)
}

func fileTime(t *testing.T, p string) time.Time {
	fi, err := os.Stat(p)
	require.NoError(t, err)
	return fi.ModTime()
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// The embedded catalog's debian-13-containerd bakes containerd and runc
// into its local build, which offline runs use.
func TestEmbeddedDebianContainerdBakesItsEngine(t *testing.T) {
	c, err := catalog.LoadEmbedded()
	require.NoError(t, err)
	tt, err := c.Resolve("debian-13-containerd")
	require.NoError(t, err)
	assert.Equal(t, []string{"containerd", "runc"}, BakedPackages(tt, catalog.ArchX8664))
	if host != catalog.ArchX8664 {
		t.Skip("the recipe is for x86_64")
	}
	b := &fakeBuilder{}
	a, err := Resolve(context.Background(), tt, host, WithOffline(), WithBuilder(b.Build), WithCacheDir(t.TempDir()))
	require.NoError(t, err)
	assert.Equal(t, "build:trixie", a.Source)
	assert.True(t, b.recipe.Bake)
	assert.Contains(t, b.recipe.Packages, "cloud-init")
	assert.Equal(t, []string{"containerd", "runc"}, b.extra)
}

func TestUnavailableTellsSkipFromFail(t *testing.T) {
	ctx := context.Background()
	// Offline with URL entries only: unavailable here.
	tt := template()
	tt.Images = tt.Images[:3]
	_, err := Resolve(ctx, tt, host, WithOffline(), WithCacheDir(t.TempDir()))
	reason, ok := Unavailable(err)
	assert.True(t, ok)
	assert.Contains(t, reason, "images[0] "+urlA+": offline")

	// Hosts that cannot be reached, and no build tools: unavailable.
	f := &fakeFetcher{errs: map[string]error{
		urlA: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")},
		urlB: &net.DNSError{Err: "no such host", Name: "images.example", IsNotFound: true},
	}}
	b := &fakeBuilder{err: fmt.Errorf("checking: %w", imagebuild.ErrToolMissing)}
	_, err = Resolve(ctx, template(), host, WithFetcher(f), WithBuilder(b.Build), WithCacheDir(t.TempDir()))
	reason, ok = Unavailable(err)
	assert.True(t, ok, "%v", err)
	assert.Contains(t, reason, "connection refused")
	assert.Contains(t, reason, "no such host")

	// No entry for the arch at all: unavailable.
	_, err = Resolve(ctx, &catalog.Template{Name: "x"}, host)
	_, ok = Unavailable(err)
	assert.True(t, ok)

	// A server that answers 404 for a pinned URL: the template is broken.
	f = &fakeFetcher{errs: map[string]error{urlB: &net.OpError{Op: "dial", Err: errors.New("refused")}}}
	_, err = Resolve(ctx, template(), host, WithFetcher(f), WithBuilder(b.Build), WithCacheDir(t.TempDir()))
	require.ErrorIs(t, err, ErrNoImage)
	_, ok = Unavailable(err)
	assert.False(t, ok, "urlA answered 404")

	// A build that ran and failed is a failure too.
	f = &fakeFetcher{errs: map[string]error{urlA: &net.OpError{Op: "dial", Err: errors.New("refused")}, urlB: &net.OpError{Op: "dial", Err: errors.New("refused")}}}
	b = &fakeBuilder{err: errors.New("mmdebstrap: exit status 1")}
	_, err = Resolve(ctx, template(), host, WithFetcher(f), WithBuilder(b.Build), WithCacheDir(t.TempDir()))
	require.ErrorIs(t, err, ErrNoImage)
	_, ok = Unavailable(err)
	assert.False(t, ok)

	// Errors that are not about availability at all.
	_, ok = Unavailable(ErrDigestMismatch)
	assert.False(t, ok)
	_, ok = Unavailable(nil)
	assert.False(t, ok)
}

func TestWithMirrorsRewritesDownloads(t *testing.T) {
	qcow := diskFile(t, FormatQcow2)
	body, err := os.ReadFile(qcow)
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/mirror/noble.img" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	tt := &catalog.Template{Name: "u", Images: []catalog.Image{{Arch: host, Location: "https://cloud-images.ubuntu.com/noble.img", Digest: sha256Of(t, qcow)}}}
	a, err := Resolve(context.Background(), tt, host, WithCacheDir(t.TempDir()), WithMirrors([]string{"https://cloud-images.ubuntu.com/=" + srv.URL + "/mirror/"}))
	require.NoError(t, err)
	assert.Equal(t, "https://cloud-images.ubuntu.com/noble.img", a.Source, "the source is the upstream URL")
	assert.Equal(t, srv.URL+"/mirror/noble.img", a.Download.Source)

	_, err = Resolve(context.Background(), tt, host, WithMirrors([]string{"no-equals-sign"}))
	assert.ErrorContains(t, err, "WithMirrors")
}
