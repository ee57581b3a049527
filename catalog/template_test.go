package catalog

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestForArch(t *testing.T) {
	tmpl := resolveFixture(t, "valid-basic.yaml", "debian-99-docker")

	assert.Len(t, tmpl.ImagesFor(ArchX8664), 2)
	require.Len(t, tmpl.ImagesFor(ArchAarch64), 1)
	assert.Equal(t, "rolling test image", tmpl.ImagesFor(ArchAarch64)[0].NoDigest)
	assert.Empty(t, tmpl.ImagesFor("riscv64"))
	assert.Equal(t, []string{ArchX8664, ArchAarch64}, tmpl.Arches())

	assert.Len(t, tmpl.StepsFor(ArchX8664), 5, "the aarch64-only step is left out")
	assert.Len(t, tmpl.StepsFor(ArchAarch64), 6)
	assert.Len(t, tmpl.ProbesFor(ArchX8664), 1)

	// StepsFor also applies distro filters, for templates not from Resolve
	raw := &Template{Distro: &Distro{Name: "fedora", Family: FamilyRHEL}, Provision: []Step{
		{Mode: ModeSystem, Script: "a", When: &When{Families: []string{FamilyDebian}}},
		{Mode: ModeSystem, Script: "b", When: &When{Distros: []string{"fedora"}, Arches: []string{ArchAarch64}}},
		{Mode: ModeSystem, Script: "c"},
	}}
	var got []string
	for _, s := range raw.StepsFor(ArchAarch64) {
		got = append(got, s.Script)
	}
	assert.Equal(t, []string{"b", "c"}, got)
}

func TestWhenMatches(t *testing.T) {
	deb := &Distro{Name: "debian", Family: FamilyDebian}
	var none *When
	assert.True(t, none.Matches(deb, ArchX8664))
	assert.True(t, (&When{}).Matches(deb, ArchX8664))
	assert.True(t, (&When{Families: []string{"debian"}, Distros: []string{"debian"}}).Matches(deb, ""))
	assert.False(t, (&When{Families: []string{"debian"}, Distros: []string{"ubuntu"}}).Matches(deb, ""), "both lists must match")
	assert.False(t, (&When{Arches: []string{ArchAarch64}}).Matches(deb, ArchX8664))
}

func TestHostArch(t *testing.T) {
	assert.Equal(t, ArchX8664, archOf("amd64"))
	assert.Equal(t, ArchAarch64, archOf("arm64"))
	assert.Equal(t, "riscv64", archOf("riscv64"))
	assert.Contains(t, []string{ArchX8664, ArchAarch64}, HostArch())
}

func TestDefault(t *testing.T) {
	tmpl := &Template{Kind: KindTemplate,
		Distro:       &Distro{Name: "debian", Family: FamilyDebian},
		Engine:       &Engine{Name: "k3s"},
		Images:       []Image{{Arch: ArchX8664, Build: &BuildRecipe{Suite: "trixie"}}, {Arch: ArchAarch64, Location: "https://x/y"}},
		Provision:    []Step{{Mode: ModeData, Path: "/x", Content: "y"}},
		Probes:       []Probe{{Description: "d", Script: "true"}},
		PortForwards: []PortForward{{GuestPort: 22}},
	}
	Default(tmpl)
	assert.Equal(t, 2, *tmpl.CPUs)
	assert.Equal(t, int64(2<<30), tmpl.MemoryBytes())
	assert.Equal(t, int64(10<<30), tmpl.DiskBytes())
	assert.Equal(t, &User{Name: "guest", Shell: "/bin/bash", Sudo: tmpl.User.Sudo}, tmpl.User)
	assert.True(t, *tmpl.User.Sudo)
	assert.Equal(t, TierExperimental, tmpl.Tier)
	assert.Equal(t, "systemd", tmpl.Distro.Init)
	assert.Equal(t, "k3s --version | head -1", tmpl.Engine.VersionCommand)
	assert.Equal(t, FirmwareBIOS, tmpl.Images[0].Firmware)
	assert.Equal(t, FirmwareUEFI, tmpl.Images[1].Firmware)
	assert.Equal(t, &BuildRecipe{Suite: "trixie", Mirror: "http://deb.debian.org/debian", Components: []string{"main"}}, tmpl.Images[0].Build)
	assert.Equal(t, "0644", tmpl.Provision[0].Permissions)
	assert.Equal(t, "probe", tmpl.Probes[0].Timeout)
	assert.Equal(t, "tcp", tmpl.PortForwards[0].Proto)

	again := tmpl.DeepCopy()
	Default(again)
	assert.Equal(t, tmpl, again, "Default is idempotent")

	// the shipped engines keep their version commands; any other engine
	// name is valid and has none by default
	for _, name := range []string{"containerd", "docker", "podman", "k3s", "k0s", "rke2", "apptainer", "k8s", "usernetes"} {
		assert.NotEmpty(t, versionCommands[name], "no version command for engine %s", name)
	}
	for name := range versionCommands {
		assert.Regexp(t, enginePattern, name)
	}
	own := &Template{Kind: KindTemplate, Engine: &Engine{Name: "my-engine"}}
	Default(own)
	assert.Empty(t, own.Engine.VersionCommand)
	for _, name := range distroNames {
		assert.Contains(t, familyNames, distroFamily[name], "no family for distro %s", name)
	}
}

// validateGo checks a template built in Go, as a catalog checks a loaded
// one; positions carry only t.Source.
func validateGo(t *Template) error {
	loc := func(string) Position { return Position{File: t.Source} }
	errs, _ := checkDocument(t, loc)
	if t.Kind == KindTemplate {
		errs = append(errs, checkTemplate(t, loc, t.Provision, t.Probes, false)...)
	}
	return errs.errOrNil()
}

func TestValidateGoTemplate(t *testing.T) {
	tmpl := &Template{APIVersion: APIVersion, Kind: KindTemplate, Name: "debian-13", Source: "made in Go",
		Distro: &Distro{Name: "debian", Release: "13", Family: FamilyDebian},
		Images: []Image{{Arch: ArchX8664, Location: "https://x/y"}}}
	Default(tmpl)
	require.EqualError(t, validateGo(tmpl), "made in Go: images[0].digest: must be set (or noDigest must say why)")
	tmpl.Images[0].NoDigest = "test"
	require.NoError(t, validateGo(tmpl))
}
