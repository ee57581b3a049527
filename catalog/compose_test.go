package catalog

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func resolveFixture(t *testing.T, file, name string, opts ...ResolveOption) *Template {
	t.Helper()
	tmpl, err := loadFixture(t, file).Resolve(name, opts...)
	require.NoError(t, err)
	return tmpl
}

// TestMergeRules checks each rule of MergeRules on valid-basic.yaml.
func TestMergeRules(t *testing.T) {
	tmpl := resolveFixture(t, "valid-basic.yaml", "debian-99-docker")

	// not inherited
	assert.Equal(t, "debian-99-docker", tmpl.Name)
	assert.Equal(t, KindTemplate, tmpl.Kind)
	assert.Equal(t, []string{"debian-test-docker"}, tmpl.Aliases)
	assert.Equal(t, "Docker on Debian 99", tmpl.Description)
	assert.Equal(t, TierNightly, tmpl.Tier)
	assert.Nil(t, tmpl.Base, "a resolved template has its bases composed in")
	assert.Equal(t, "testdata/valid-basic.yaml", tmpl.Source)

	// structs field by field; scalars nearest wins
	assert.Equal(t, &Distro{Name: "debian", Release: "99", Family: "debian", Init: "systemd"}, tmpl.Distro)
	assert.Equal(t, "docker", tmpl.Engine.Name)
	assert.Equal(t, "27.5", tmpl.Engine.Version)
	assert.Equal(t, []Requirement{{What: "internet", Reason: "docker's apt repository"}}, tmpl.Engine.Requires)
	assert.Equal(t, 4, *tmpl.CPUs)
	assert.Equal(t, "1GiB", tmpl.Memory)
	assert.Equal(t, "tester", tmpl.User.Name)
	assert.Equal(t, []string{"adm", "docker"}, tmpl.User.Groups, "groups are a union, bases first")

	// maps key by key, nearest wins
	assert.Equal(t, map[string]string{"FROM": "template", "IMAGE_ONLY": "yes"}, tmpl.Env)
	assert.Equal(t, map[string]string{"channel": "stable", "mirror": ""}, tmpl.Params)

	// images from the only base that has them
	require.Len(t, tmpl.Images, 3)
	assert.Equal(t, "https://example.org/debian-99-amd64.qcow2", tmpl.Images[0].Location)

	// lists concatenated, bases first, `when` on family applied (the rhel
	// step and probe are gone)
	var scripts []string
	for _, s := range tmpl.Provision {
		scripts = append(scripts, s.Mode+":"+s.Script+s.Path+firstOr(s.Packages))
	}
	assert.Equal(t, []string{
		"boot:echo boot",
		"packages:docker.io",
		"system:echo arm only",
		"system:systemctl enable --now docker",
		"data:/etc/test.conf",
		"user:echo \"$PARAM_channel\"",
	}, scripts)
	require.Len(t, tmpl.Probes, 1)
	assert.Equal(t, "docker answers", tmpl.Probes[0].Description)
	assert.Equal(t, []PortForward{{GuestPort: 2375, Proto: "tcp"}, {GuestPort: 8080, HostPort: 18080, Proto: "udp"}}, tmpl.PortForwards)
}

func firstOr(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func TestImagesReplaceNotConcatenate(t *testing.T) {
	c := catalogFromYAML(t, `
apiVersion: guestcatalog.dev/v1alpha1
kind: Fragment
name: images/debian-99
distro: {name: debian, release: "99", family: debian}
images:
  - {arch: x86_64, build: {suite: trixie}}
  - {arch: aarch64, build: {suite: trixie}}
---
apiVersion: guestcatalog.dev/v1alpha1
kind: Template
name: debian-99
base: [images/debian-99]
images:
  - {arch: x86_64, build: {suite: bookworm}}
`)
	tmpl, err := c.Resolve("debian-99")
	require.NoError(t, err)
	require.Len(t, tmpl.Images, 1)
	assert.Equal(t, "bookworm", tmpl.Images[0].Build.Suite)
}

func TestBaseOrderLaterOverrides(t *testing.T) {
	c := catalogFromYAML(t, `
apiVersion: guestcatalog.dev/v1alpha1
kind: Fragment
name: a
memory: 1GiB
env: {X: a, A: a}
provision: [{mode: system, script: a}]
---
apiVersion: guestcatalog.dev/v1alpha1
kind: Fragment
name: b
base: [c]
memory: 3GiB
env: {X: b}
provision: [{mode: system, script: b}]
---
apiVersion: guestcatalog.dev/v1alpha1
kind: Fragment
name: c
disk: 5GiB
provision: [{mode: system, script: c}]
---
apiVersion: guestcatalog.dev/v1alpha1
kind: Template
name: debian-99
base: [a, b]
distro: {name: debian, release: "99", family: debian}
images: [{arch: x86_64, build: {suite: trixie}}]
provision: [{mode: system, script: self}]
`)
	tmpl, err := c.Resolve("debian-99")
	require.NoError(t, err)
	assert.Equal(t, "3GiB", tmpl.Memory)
	assert.Equal(t, "5GiB", tmpl.Disk)
	assert.Equal(t, map[string]string{"X": "b", "A": "a"}, tmpl.Env)
	var order []string
	for _, s := range tmpl.Provision {
		order = append(order, s.Script)
	}
	assert.Equal(t, []string{"a", "c", "b", "self"}, order)
}

func TestDiamondIsAnError(t *testing.T) {
	c := catalogFromYAML(t, `
apiVersion: guestcatalog.dev/v1alpha1
kind: Fragment
name: common
provision: [{mode: system, script: common}]
---
apiVersion: guestcatalog.dev/v1alpha1
kind: Fragment
name: a
base: [common]
---
apiVersion: guestcatalog.dev/v1alpha1
kind: Template
name: debian-99
base: [a, common]
distro: {name: debian, release: "99", family: debian}
images: [{arch: x86_64, build: {suite: trixie}}]
`)
	_, err := c.Resolve("debian-99")
	require.Error(t, err)
	assert.Contains(t, err.Error(), ":15:11: base[1]: common is already composed into this template (through a); a document is composed once, or its provisioning would run twice")
}

func TestResolveDoesNotShareState(t *testing.T) {
	c := loadFixture(t, "valid-basic.yaml")
	a, err := c.Resolve("debian-99-docker")
	require.NoError(t, err)
	a.Env["FROM"] = "changed"
	a.Images[0].Location = "changed"
	a.Provision[0].Script = "changed"
	a.User.Groups[0] = "changed"
	b, err := c.Resolve("debian-99-docker")
	require.NoError(t, err)
	assert.Equal(t, "template", b.Env["FROM"])
	assert.Equal(t, "https://example.org/debian-99-amd64.qcow2", b.Images[0].Location)
	assert.Equal(t, "echo boot", b.Provision[0].Script)
	assert.Equal(t, "adm", b.User.Groups[0])
	assert.Equal(t, b, b.DeepCopy())
}

func TestMergeRulesText(t *testing.T) {
	assert.Contains(t, MergeRules, "`images`")
	assert.NotContains(t, MergeRules, "~")
}
