package imagebuild

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
)

var baseRecipe = catalog.BuildRecipe{
	Suite:      "trixie",
	Mirror:     "http://deb.debian.org/debian",
	Components: []string{"main"},
	Packages:   []string{"containerd", "runc"},
	Bake:       true,
}

func mustPlan(t *testing.T, r catalog.BuildRecipe, extra []string, arch string) *Plan {
	t.Helper()
	p, err := NewPlan(r, extra, arch)
	require.NoError(t, err)
	return p
}

func TestPlanKeyIsStable(t *testing.T) {
	p := mustPlan(t, baseRecipe, []string{"podman"}, catalog.ArchX8664)
	assert.Len(t, p.Key, KeyLength)
	assert.Regexp(t, `^[0-9a-f]+$`, p.Key)
	// Pinned: a change here means every cached image is rebuilt; bump
	// BuilderVersion deliberately instead of changing the hash input.
	assert.Equal(t, "825b632812fdaf1d", p.Key)

	// Same content, other spelling: same key.
	same := []struct {
		name  string
		r     catalog.BuildRecipe
		extra []string
	}{
		{"package order and duplicates", catalog.BuildRecipe{Suite: "trixie", Mirror: "http://deb.debian.org/debian",
			Components: []string{"main"}, Packages: []string{"runc", "containerd", "runc"}, Bake: true}, []string{"podman"}},
		{"default mirror and components", catalog.BuildRecipe{Suite: "trixie", Packages: []string{"containerd", "runc"}, Bake: true}, []string{"podman"}},
		{"trailing slash on the mirror", catalog.BuildRecipe{Suite: "trixie", Mirror: "http://deb.debian.org/debian/",
			Packages: []string{"containerd", "runc"}, Bake: true}, []string{"podman"}},
		{"extra package already in the recipe", catalog.BuildRecipe{Suite: "trixie", Packages: []string{"containerd", "runc", "podman"}, Bake: true}, []string{"podman"}},
		{"base package spelled out", catalog.BuildRecipe{Suite: "trixie", Packages: []string{"containerd", "runc", "systemd", "linux-image-cloud-amd64"}, Bake: true}, []string{"podman"}},
	}
	for _, c := range same {
		assert.Equal(t, p.Key, mustPlan(t, c.r, c.extra, catalog.ArchX8664).Key, c.name)
	}
}

func TestPlanKeyIsSensitiveToEveryInput(t *testing.T) {
	base := mustPlan(t, baseRecipe, []string{"podman"}, catalog.ArchX8664)
	with := func(f func(r *catalog.BuildRecipe)) catalog.BuildRecipe {
		r := baseRecipe
		r.Components = append([]string(nil), r.Components...)
		r.Packages = append([]string(nil), r.Packages...)
		f(&r)
		return r
	}
	cases := []struct {
		name  string
		r     catalog.BuildRecipe
		extra []string
		arch  string
	}{
		{"suite", with(func(r *catalog.BuildRecipe) { r.Suite = "bookworm" }), []string{"podman"}, catalog.ArchX8664},
		{"mirror", with(func(r *catalog.BuildRecipe) { r.Mirror = "http://mirror.example/debian" }), []string{"podman"}, catalog.ArchX8664},
		{"components", with(func(r *catalog.BuildRecipe) { r.Components = []string{"main", "contrib"} }), []string{"podman"}, catalog.ArchX8664},
		{"a package more", with(func(r *catalog.BuildRecipe) { r.Packages = append(r.Packages, "curl") }), []string{"podman"}, catalog.ArchX8664},
		{"a package less", with(func(r *catalog.BuildRecipe) { r.Packages = r.Packages[:1] }), []string{"podman"}, catalog.ArchX8664},
		{"a version pin", with(func(r *catalog.BuildRecipe) { r.Packages[0] = "containerd=1.7.24~ds1-6+b4" }), []string{"podman"}, catalog.ArchX8664},
		{"extra packages", baseRecipe, []string{"podman", "buildah"}, catalog.ArchX8664},
		{"no extra packages", baseRecipe, nil, catalog.ArchX8664},
		{"arch", baseRecipe, []string{"podman"}, catalog.ArchAarch64},
	}
	seen := map[string]string{base.Key: "base"}
	for _, c := range cases {
		p := mustPlan(t, c.r, c.extra, c.arch)
		if prev, dup := seen[p.Key]; dup {
			t.Errorf("%s: key %s equals the key of %s", c.name, p.Key, prev)
		}
		seen[p.Key] = c.name
	}

	// The builder version is part of the key.
	// Bake decides whether the extras are in: off, the extras are ignored
	// and the image is the one without them.
	noBake := mustPlan(t, with(func(r *catalog.BuildRecipe) { r.Bake = false }), []string{"podman"}, catalog.ArchX8664)
	assert.NotEqual(t, base.Key, noBake.Key, "bake")
	assert.Equal(t, mustPlan(t, baseRecipe, nil, catalog.ArchX8664).Key, noBake.Key)

	assert.Equal(t, base.Key, base.hashWith(BuilderVersion))
	assert.NotEqual(t, base.Key, base.hashWith(BuilderVersion+".1"), "builder version")
}

func TestPlanContents(t *testing.T) {
	p := mustPlan(t, catalog.BuildRecipe{Suite: "trixie", Packages: []string{"sudo", "containerd"}, Bake: true},
		[]string{"runc", "containerd"}, catalog.ArchX8664)
	assert.Equal(t, "amd64", p.DebArch)
	assert.Equal(t, DefaultMirror, p.Mirror)
	assert.Equal(t, []string{"main"}, p.Components)
	assert.Equal(t, []string{"containerd", "runc"}, p.Extra)
	for _, want := range []string{"containerd", "runc", "sudo", "cloud-init", "openssh-server", "e2fsprogs", "dbus",
		"systemd-sysv", "systemd-resolved", "linux-image-cloud-amd64"} {
		assert.Contains(t, p.Packages, want)
	}
	assert.IsNonDecreasing(t, p.Packages)
	assert.Equal(t, "build:trixie", p.Source())

	arm := mustPlan(t, catalog.BuildRecipe{Suite: "trixie"}, nil, catalog.ArchAarch64)
	assert.Equal(t, "arm64", arm.DebArch)
	assert.Contains(t, arm.Packages, "linux-image-cloud-arm64")
	assert.NotContains(t, arm.Packages, "linux-image-cloud-amd64")

	noBake := mustPlan(t, catalog.BuildRecipe{Suite: "trixie"}, []string{"podman"}, catalog.ArchX8664)
	assert.Empty(t, noBake.Extra)
	assert.NotContains(t, noBake.Packages, "podman")
}

func TestPlanRejectsBadRecipes(t *testing.T) {
	_, err := NewPlan(catalog.BuildRecipe{
		Suite:      "Trixie; rm -rf /",
		Mirror:     "ftp://example.org/debian",
		Components: []string{"main", "non free"},
		Packages:   []string{"ok", "--no-check"},
		Bake:       true,
	}, []string{"bad name"}, catalog.ArchX8664)
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrInvalidRecipe))
	msg := err.Error()
	for _, want := range []string{
		`suite: "Trixie; rm -rf /" is not a Debian suite name`,
		`mirror: "ftp://example.org/debian" is not an http(s):// or file:// URL`,
		`components: "non free" is not an archive component`,
		`packages[1]: "--no-check" is not a Debian package name`,
		`extra packages[0]: "bad name" is not a Debian package name`,
	} {
		assert.Contains(t, msg, want)
	}

	_, err = NewPlan(catalog.BuildRecipe{Suite: "trixie"}, nil, "riscv64")
	assert.ErrorIs(t, err, ErrInvalidRecipe)
	assert.ErrorContains(t, err, `unknown arch "riscv64"`)

	_, err = NewPlan(catalog.BuildRecipe{Suite: "trixie", Mirror: "file:///srv/mirror"}, nil, catalog.ArchX8664)
	assert.NoError(t, err, "a local file:// mirror is fine")
}

func TestKernelAppend(t *testing.T) {
	a := KernelAppend(catalog.ArchX8664)
	assert.Equal(t, "root=LABEL=root rw console=ttyS0,115200 net.ifnames=0 panic=-1", a)
	assert.True(t, strings.Contains(KernelAppend(catalog.ArchAarch64), "console=ttyAMA0,115200"))
}

func TestDebianArch(t *testing.T) {
	for arch, want := range map[string]string{catalog.ArchX8664: "amd64", catalog.ArchAarch64: "arm64"} {
		got, err := DebianArch(arch)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err := DebianArch("amd64")
	assert.Error(t, err, "Debian's own names are not catalog arches")
	assert.Contains(t, []string{catalog.ArchX8664, catalog.ArchAarch64}, catalog.HostArch())
}
