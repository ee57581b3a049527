package image

import (
	"bytes"
	"context"
	"crypto/sha256"
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
	"github.com/guestcatalog/guestcatalog/framework/qemu/qemutest"
)

var host = catalog.HostArch()

func otherArch() string {
	if host == catalog.ArchX8664 {
		return catalog.ArchAarch64
	}
	return catalog.ArchX8664
}

// diskFile writes a real disk image (a qcow2 made by qemu-img, which
// Resolve asks about every image).
func diskFile(t *testing.T, format string) string {
	t.Helper()
	qemutest.RequireTools(t, "qemu-img")
	p := filepath.Join(t.TempDir(), "disk."+format)
	switch format {
	case FormatRaw:
		require.NoError(t, os.WriteFile(p, make([]byte, 1<<20), 0o644))
	case FormatQcow2:
		qemuImg(t, "create", "-q", "-f", "qcow2", p, "64M")
	}
	return p
}

func qemuImg(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("qemu-img", args...).CombinedOutput()
	require.NoError(t, err, string(out))
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

func TestOfflineUsesTheCacheThenBuildEntriesAndBakesThePackagesSteps(t *testing.T) {
	// Offline, the fetcher serves from the cache only: a miss is ErrOffline.
	miss := fmt.Errorf("%w: not in the cache", download.ErrOffline)
	f := &fakeFetcher{errs: map[string]error{urlA: miss, urlB: miss}}
	b := &fakeBuilder{}
	a, err := Resolve(context.Background(), template(), host, WithOffline(), WithFetcher(f), WithBuilder(b.Build), WithCacheDir(t.TempDir()))
	require.NoError(t, err)
	assert.Equal(t, []string{urlA}, f.calls, "offline: the cache is asked for each pinned URL entry")
	require.Len(t, a.Skipped, 2)
	assert.True(t, a.Skipped[0].Unavailable)
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

// Every refusal names the file and the field, and is final: the next
// entry is never tried.
func TestUnsafeOrMislabelledDownloadsAreRefused(t *testing.T) {
	dir := t.TempDir()
	backed := filepath.Join(dir, "backed.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-b", "/etc/hostname", "-F", "raw", backed)
	withData := filepath.Join(dir, "with-data.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-o", "data_file="+filepath.Join(dir, "data.raw"), withData, "1M")
	vmdk := filepath.Join(dir, "x.vmdk")
	qemuImg(t, "create", "-q", "-f", "vmdk", vmdk, "1M")
	rawNamedQcow2 := diskFile(t, FormatRaw)
	for _, tc := range []struct {
		name, file, url string
		want            error
		msg             string
	}{
		{"backing file", backed, urlA, ErrUnsafeImage, `backing-filename is "/etc/hostname"`},
		{"data file", withData, urlA, ErrUnsafeImage, `format-specific.data.data-file is "` + filepath.Join(dir, "data.raw") + `"`},
		{"vmdk", vmdk, urlA, ErrUnsupportedFormat, `format is "vmdk"`},
		{"raw named .qcow2", rawNamedQcow2, "https://example.org/images/disk.qcow2", ErrFormatMismatch, `format is "raw", declared "qcow2"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tt := template()
			tt.Images[1].Location = tc.url
			f := &fakeFetcher{files: map[string]string{tc.url: tc.file, urlB: diskFile(t, FormatQcow2)}}
			b := &fakeBuilder{}
			_, err := Resolve(context.Background(), tt, host, WithFetcher(f), WithBuilder(b.Build), WithCacheDir(t.TempDir()))
			require.ErrorIs(t, err, tc.want)
			assert.ErrorContains(t, err, tc.file+": "+tc.msg, "names the file and the field")
			assert.Equal(t, []string{tc.url}, f.calls, "not a fallback")
			assert.Zero(t, b.calls)
		})
	}
}

func TestCancelledContextStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := &fakeFetcher{}
	_, err := Resolve(ctx, template(), host, WithFetcher(f), WithCacheDir(t.TempDir()))
	assert.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, f.calls)
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
	c, err := catalog.Load(context.Background())
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
