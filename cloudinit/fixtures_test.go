package cloudinit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
)

// Test-only SSH keys (testdata/*): never used outside these tests.
func testKeys(t testing.TB) (client, hostPriv, hostPub string) {
	t.Helper()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(t, err)
		return string(b)
	}
	return strings.TrimSpace(read("client_ed25519.pub")), read("ssh_host_ed25519_key"), strings.TrimSpace(read("ssh_host_ed25519_key.pub"))
}

func testInput(t testing.TB, arch string) Input {
	client, priv, pub := testKeys(t)
	return Input{
		Arch:              arch,
		Image:             catalog.Image{Arch: arch, Location: "https://example.org/debian-13.qcow2"},
		AuthorizedKeys:    []string{client},
		HostKeyPrivatePEM: priv,
		HostKeyPublic:     pub,
	}
}

func ptr[T any](v T) *T { return &v }

// fixtureDebianDocker exercises every step mode, `when` filtering, package
// de-duplication, a user-owned data file and env/params.
func fixtureDebianDocker() *catalog.Template {
	return &catalog.Template{
		APIVersion: catalog.APIVersion,
		Kind:       catalog.KindTemplate,
		Name:       "debian-13-docker",
		Distro:     &catalog.Distro{Name: "debian", Release: "13", Family: catalog.FamilyDebian, Init: "systemd"},
		Engine:     &catalog.Engine{Name: "docker"},
		User:       &catalog.User{Name: "gc", Shell: "/bin/bash", Sudo: ptr(true), Groups: []string{"docker"}},
		Env:        map[string]string{"DOCKER_BUILDKIT": "1"},
		Params:     map[string]string{"mirror": "http://deb.debian.org/debian", "rootless": "true"},
		Provision: []catalog.Step{
			{Mode: catalog.ModeData, Description: "apt: no recommends", Path: "/etc/apt/apt.conf.d/90guestcatalog",
				Content: "APT::Install-Recommends \"false\";\n", Permissions: "0644"},
			{Mode: catalog.ModePackages, Description: "engine", Packages: []string{"docker.io", "uidmap"}},
			{Mode: catalog.ModeBoot, Description: "Load overlay module", Script: "modprobe overlay || true\n"},
			{Mode: catalog.ModeSystem, Description: "Enable Docker", Script: "systemctl enable --now docker\nusermod -aG docker \"$GUESTCATALOG_USER\"\n"},
			{Mode: catalog.ModeData, Description: "user config", Path: "/home/gc/.config/docker/daemon.json",
				Content: "{\"features\": {\"cdi\": true}}\n", Owner: "gc:gc", Permissions: "0600"},
			{Mode: catalog.ModePackages, Description: "rootless extras", Packages: []string{"docker.io", "dbus-user-session"}},
			{Mode: catalog.ModeUser, Description: "Rootless: check docker", Script: "#!/bin/bash\nset -eu -o pipefail\ndocker info >/dev/null\necho \"mirror=$PARAM_mirror\"\n"},
			{Mode: catalog.ModeSystem, Description: "arm only", When: &catalog.When{Arches: []string{catalog.ArchAarch64}}, Script: "echo arm\n"},
			{Mode: catalog.ModeSystem, Description: "fedora only", When: &catalog.When{Families: []string{catalog.FamilyRHEL}}, Script: "echo rhel\n"},
		},
	}
}

// fixtureDebianBaked is a locally built image with the packages baked in.
func fixtureDebianBaked() (*catalog.Template, catalog.Image) {
	t := &catalog.Template{
		APIVersion: catalog.APIVersion,
		Kind:       catalog.KindTemplate,
		Name:       "debian-13-containerd",
		Distro:     &catalog.Distro{Name: "debian", Release: "13", Family: catalog.FamilyDebian},
		User:       &catalog.User{Name: "gc", Shell: "/bin/bash"},
		Provision: []catalog.Step{
			{Mode: catalog.ModePackages, Packages: []string{"containerd", "runc"}},
			{Mode: catalog.ModeSystem, Description: "Start containerd", Script: "systemctl enable --now containerd\n"},
		},
	}
	img := catalog.Image{Arch: catalog.ArchX8664, Build: &catalog.BuildRecipe{Suite: "trixie", Bake: true}}
	return t, img
}

// fixtureAlpine is an openrc guest without sudo for its user.
func fixtureAlpine() *catalog.Template {
	return &catalog.Template{
		APIVersion: catalog.APIVersion,
		Kind:       catalog.KindTemplate,
		Name:       "alpine-3.23-podman",
		Distro:     &catalog.Distro{Name: "alpine", Release: "3.23", Family: catalog.FamilyAlpine, Init: "openrc"},
		User:       &catalog.User{Name: "alpine", Shell: "/bin/ash", Sudo: ptr(false)},
		Provision: []catalog.Step{
			{Mode: catalog.ModePackages, Packages: []string{"podman"}},
			{Mode: catalog.ModeSystem, Description: "cgroups", Script: "rc-update add cgroups && rc-service cgroups start\n"},
			{Mode: catalog.ModeUser, Description: "podman info", Script: "podman info\n"},
		},
	}
}

// hostilePayload is a value that would run commands if a shell evaluated it.
const hostilePayload = "x'; touch /tmp/pwned; echo '$(id)`id`\"$HOME\"\\\nsecond line; rm -rf \"$X\" & #\n"

// fixtureTricky carries hostile env and param values and awkward scripts.
func fixtureTricky() *catalog.Template {
	return &catalog.Template{
		APIVersion: catalog.APIVersion,
		Kind:       catalog.KindTemplate,
		Name:       "fedora-44-podman",
		Distro:     &catalog.Distro{Name: "fedora", Release: "44", Family: catalog.FamilyRHEL},
		User:       &catalog.User{Name: "fedora"},
		Env:        map[string]string{"EMPTY": "", "QUOTED": "it's \"quoted\"", "CRLF": "a\r\nb"},
		Params:     map[string]string{"evil": hostilePayload, "colon": "key: value # not a comment"},
		Provision: []catalog.Step{
			{Mode: catalog.ModeData, Path: "/etc/motd", Content: "  leading spaces\n\ttab\r\nCRLF\x01ctrl\n"},
			{Mode: catalog.ModeData, Path: "/etc/no-newline", Content: "no newline at end"},
			{Mode: catalog.ModeSystem, Description: "Script: with 'quotes' & GUESTCATALOG_02_SCRIPT_WITH_QUOTES", Script: "printf '%s\\n' \"$PARAM_evil\"\n---\n..."},
		},
	}
}

// decodeUserData parses user-data generically.
func decodeUserData(t testing.TB, b []byte) map[string]any {
	t.Helper()
	require.True(t, strings.HasPrefix(string(b), "#cloud-config\n"), "user-data must start with #cloud-config")
	var m map[string]any
	require.NoError(t, yaml.Unmarshal(b, &m))
	return m
}

// writeFiles returns user-data's write_files entries by path.
func writeFiles(t testing.TB, ud map[string]any) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	list, _ := ud["write_files"].([]any)
	for _, e := range list {
		m := e.(map[string]any)
		out[m["path"].(string)] = m
	}
	return out
}

// requireTool skips an integration test under -short, and when name is not
// installed, unless GUESTCATALOG_REQUIRE_TOOLS=1 makes that a failure.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("GUESTCATALOG_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%s is required (GUESTCATALOG_REQUIRE_TOOLS=1) but not found: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}

func yamlUnmarshal(b []byte, v any) error { return yaml.Unmarshal(b, v) }
