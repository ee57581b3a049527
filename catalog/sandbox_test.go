package catalog

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func boolPtr(b bool) *bool { return &b }

// sandboxTemplate is a valid strict sandbox built in Go; tests break one
// field each.
func sandboxTemplate() *Template {
	t := &Template{APIVersion: APIVersion, Kind: KindTemplate, Name: "debian-13-sandbox", Source: "made in Go",
		Distro:    &Distro{Name: "debian", Release: "13", Family: FamilyDebian},
		Images:    []Image{{Arch: ArchX8664, Build: &BuildRecipe{Suite: "trixie", Kernel: KernelGeneric}}},
		Isolation: IsolationStrict,
		Mounts: []Mount{
			{Location: "/srv/work", MountPoint: "/workspace", Writable: true},
			{Location: "/srv/ref", MountPoint: "/reference"},
		},
		Network: &Network{Egress: EgressProxy, Allow: []string{"deb.debian.org", "*.debian.org:8080", "192.0.2.1"}},
	}
	Default(t)
	return t
}

func TestSandboxValid(t *testing.T) {
	require.NoError(t, validateGo(sandboxTemplate()))
}

// TestSandboxInvalid pins the message of each rule on the input it exists
// to refuse.
func TestSandboxInvalid(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*Template)
		want   string
	}{
		{"unknown egress", func(t *Template) { t.Network.Egress = "open" },
			`network.egress: must be one of none, nat, proxy, not "open"`},
		{"proxy without allow", func(t *Template) { t.Network.Allow = nil },
			"network.allow: must list at least one host for egress proxy (nothing allowed is egress none)"},
		{"allow without proxy", func(t *Template) { t.Network.Egress = EgressNone },
			"network.allow: is only used with egress proxy, not none"},
		{"bad allow entry", func(t *Template) { t.Network.Allow = []string{"Deb.Debian.org"} },
			`network.allow[0]: must be a lowercase host name, *.domain, or an IP address, with an optional :port, not "Deb.Debian.org"`},
		{"url as allow entry", func(t *Template) { t.Network.Allow = []string{"http://deb.debian.org/"} },
			`network.allow[0]: must be a lowercase host name, *.domain, or an IP address, with an optional :port, not "http://deb.debian.org/"`},
		{"bad allow port", func(t *Template) { t.Network.Allow = []string{"deb.debian.org:0"} },
			`network.allow[0]: must have a port from 1 to 65535, not "deb.debian.org:0"`},
		{"nat without host loopback", func(t *Template) {
			t.Network = &Network{Egress: EgressNAT, HostLoopback: boolPtr(false)}
		}, "network.hostLoopback: cannot be false with egress nat: QEMU's user network maps 10.0.2.2 to the host's loopback (use egress proxy or none)"},
		{"none with host loopback", func(t *Template) {
			t.Network = &Network{Egress: EgressNone, HostLoopback: boolPtr(true)}
		}, "network.hostLoopback: cannot be true with egress none (the guest reaches nothing); use egress proxy and allow the loopback address"},
		{"unknown isolation", func(t *Template) { t.Isolation = "paranoid" },
			`isolation: must be one of strict, not "paranoid"`},
		{"mount over /etc", func(t *Template) { t.Mounts[0].MountPoint = "/etc" },
			"mounts[0].mountPoint: /etc is a guest system directory; mount below it"},
		{"mount point twice", func(t *Template) { t.Mounts[1].MountPoint = "/workspace" },
			"mounts[1].mountPoint: /workspace is already mounted by mounts[0]"},
		{"unclean location", func(t *Template) { t.Mounts[0].Location = "/srv/../etc" },
			`mounts[0].location: must be a clean path (no .., //, or trailing /), not "/srv/../etc"`},
		{"unclean mount point", func(t *Template) { t.Mounts[0].MountPoint = "/workspace/" },
			`mounts[0].mountPoint: must be a clean path (no .., //, or trailing /), not "/workspace/"`},
		{"unknown kernel", func(t *Template) { t.Images[0].Build.Kernel = "rt" },
			`images[0].build.kernel: must be one of cloud, generic, not "rt"`},
		{"mounts with the cloud kernel", func(t *Template) { t.Images[0].Build.Kernel = KernelCloud },
			`images[0].build.kernel: must be generic for a template with mounts (Debian's cloud kernel has no 9p), not "cloud"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := sandboxTemplate()
			tc.modify(tmpl)
			err := validateGo(tmpl)
			require.Error(t, err)
			assert.Equal(t, "made in Go: "+tc.want, err.Error())
		})
	}
}

// TestSandboxName: a shipped template without an engine is named
// <distro>-<release>-sandbox exactly when it declares isolation: strict.
func TestSandboxName(t *testing.T) {
	tmpl := sandboxTemplate()
	loc := func(string) Position { return Position{File: tmpl.Source} }
	assert.Empty(t, checkTemplate(tmpl, loc, nil, nil, true))
	tmpl.Isolation = ""
	assert.Equal(t, `made in Go: name: must be "debian-13", from <distro.name>-<distro.release>[-<engine.name>] (not "debian-13-sandbox")`,
		checkTemplate(tmpl, loc, nil, nil, true).errOrNil().Error())
}

func TestNetworkPolicyDefaults(t *testing.T) {
	assert.Equal(t, Network{Egress: EgressNAT, HostLoopback: boolPtr(true)}, (&Template{}).NetworkPolicy(),
		"a template without network keeps today's behaviour")
	p := (&Template{Network: &Network{Egress: EgressProxy, Allow: []string{"a.example"}}}).NetworkPolicy()
	assert.Equal(t, Network{Egress: EgressProxy, Allow: []string{"a.example"}, HostLoopback: boolPtr(false)}, p)
	assert.True(t, p.Restricted())
	assert.False(t, (&Template{}).NetworkPolicy().Restricted())
	assert.Equal(t, "/home/guest/work", Mount{Location: "~/work"}.GuestPath("/home/guest"))
	assert.Equal(t, "/w", Mount{Location: "~/work", MountPoint: "/w"}.GuestPath("/home/guest"))
}

func TestSandboxComposes(t *testing.T) {
	c := catalogFromYAML(t, `apiVersion: guestcatalog.dev/v1alpha1
kind: Fragment
name: images/box
distro: {name: debian, release: "13", family: debian}
images: [{arch: x86_64, build: {suite: trixie, kernel: generic}}]
network: {egress: proxy, allow: [deb.debian.org]}
mounts: [{location: /srv/ref, mountPoint: /reference}]
---
apiVersion: guestcatalog.dev/v1alpha1
kind: Template
name: debian-13-sandbox
isolation: strict
base: [images/box]
network: {hostLoopback: true}
mounts: [{location: /srv/work, mountPoint: /workspace, writable: true}]
`)
	tmpl, err := c.Resolve("debian-13-sandbox")
	require.NoError(t, err)
	assert.Equal(t, &Network{Egress: EgressProxy, Allow: []string{"deb.debian.org"}, HostLoopback: boolPtr(true)}, tmpl.Network)
	assert.Len(t, tmpl.Mounts, 2, "mounts are concatenated, bases first")
	cp := tmpl.DeepCopy()
	cp.Network.Allow[0] = "changed"
	*cp.Network.HostLoopback = false
	assert.Equal(t, "deb.debian.org", tmpl.Network.Allow[0], "DeepCopy shares no allowlist")
	assert.True(t, *tmpl.Network.HostLoopback, "DeepCopy shares no pointer")
}

func TestSandboxSchema(t *testing.T) {
	b, err := GenerateSchema(".")
	require.NoError(t, err)
	for _, want := range []string{`"hostLoopback"`, `"egress"`, `"isolation"`} {
		assert.True(t, strings.Contains(string(b), want), "schema has %s", want)
	}
}
