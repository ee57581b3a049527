package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

func TestRenderCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "seed")
	stdout, stderr, code := runCLI(t, "render", "debian-docker", "--out", dir, "--arch", "x86_64", "--iso")
	require.Equal(t, 0, code, "stderr: %s", stderr)
	assert.Contains(t, stdout, "template debian-13-docker (x86_64), image https://")
	for name, mode := range map[string]os.FileMode{
		"user-data": 0o600, "meta-data": 0o644, "network-config": 0o644, "seed.iso": 0o600,
		"id_ed25519": 0o600, "id_ed25519.pub": 0o644,
		"ssh_host_ed25519_key": 0o600, "ssh_host_ed25519_key.pub": 0o644, "known_hosts": 0o644,
	} {
		st, err := os.Stat(filepath.Join(dir, name))
		require.NoError(t, err, name)
		assert.Equal(t, mode, st.Mode().Perm(), name)
		assert.Contains(t, stdout, "wrote "+filepath.Join(dir, name)+"\n")
	}
	ud, err := os.ReadFile(filepath.Join(dir, "user-data"))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(ud), "#cloud-config\n"))
	assert.Contains(t, string(ud), "package_update: true", "a downloaded image installs its packages")

	// The generated client key is the one authorized, and the host key the
	// one pinned in known_hosts and installed by user-data.
	pub, err := os.ReadFile(filepath.Join(dir, "id_ed25519.pub"))
	require.NoError(t, err)
	assert.Contains(t, string(ud), strings.TrimSpace(string(pub)))
	priv, err := os.ReadFile(filepath.Join(dir, "ssh_host_ed25519_key"))
	require.NoError(t, err)
	signer, err := ssh.ParsePrivateKey(priv)
	require.NoError(t, err)
	kh, err := os.ReadFile(filepath.Join(dir, "known_hosts"))
	require.NoError(t, err)
	_, hosts, hostKey, _, _, err := ssh.ParseKnownHosts(kh)
	require.NoError(t, err)
	assert.Equal(t, []string{"[127.0.0.1]:*", "[localhost]:*"}, hosts)
	assert.Equal(t, signer.PublicKey().Marshal(), hostKey.Marshal())
	assert.Contains(t, stdout, "host key "+ssh.FingerprintSHA256(hostKey))

	// Given keys are used, nothing is generated; --offline picks the local
	// build whose packages are baked in.
	dir2 := filepath.Join(t.TempDir(), "seed")
	stdout, stderr, code = runCLI(t, "--offline", "render", "debian-13-docker", "--out", dir2,
		"--authorized-key", filepath.Join(dir, "id_ed25519.pub"),
		"--host-key", filepath.Join(dir, "ssh_host_ed25519_key"),
		"--hostname", "vm1", "--instance-id", "i-1", "--mac", "52:54:00:12:34:56")
	require.Equal(t, 0, code, "stderr: %s", stderr)
	assert.Contains(t, stdout, "image build:trixie (packages baked in)")
	assert.NoFileExists(t, filepath.Join(dir2, "id_ed25519"))
	assert.NoFileExists(t, filepath.Join(dir2, "ssh_host_ed25519_key"))
	assert.NoFileExists(t, filepath.Join(dir2, "seed.iso"))
	ud, err = os.ReadFile(filepath.Join(dir2, "user-data"))
	require.NoError(t, err)
	assert.NotContains(t, string(ud), "package_update")
	assert.Contains(t, string(ud), strings.TrimSpace(string(pub)))
	meta, err := os.ReadFile(filepath.Join(dir2, "meta-data"))
	require.NoError(t, err)
	assert.Equal(t, "instance-id: i-1\nlocal-hostname: vm1\n", string(meta))
	net, err := os.ReadFile(filepath.Join(dir2, "network-config"))
	require.NoError(t, err)
	assert.Contains(t, string(net), `macaddress: "52:54:00:12:34:56"`)
	kh, err = os.ReadFile(filepath.Join(dir2, "known_hosts"))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(kh), "[127.0.0.1]:*,[localhost]:*,vm1 ssh-ed25519 "))
}

func TestRenderCommandErrors(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no out":        {[]string{"render", "debian-13-docker"}, `required flag(s) "out" not set`},
		"unknown":       {[]string{"render", "no-such-template", "--out", dir}, "unknown template"},
		"bad set":       {[]string{"render", "debian-13-docker", "--out", dir, "--set", "novalue"}, "want NAME=VALUE"},
		"no build":      {[]string{"--offline", "render", "ubuntu-24.04-k3s", "--out", dir}, "no local build image for x86_64"},
		"no arch image": {[]string{"render", "debian-13-docker", "--out", dir, "--arch", "riscv64"}, `--arch: "riscv64" is not one of x86_64, aarch64`},
		"bad key file":  {[]string{"render", "debian-13-docker", "--out", dir, "--authorized-key", filepath.Join(dir, "missing.pub")}, "--authorized-key"},
		"bad mac":       {[]string{"render", "debian-13-docker", "--out", dir, "--mac", "zz"}, "not an Ethernet MAC address"},
	} {
		t.Run(name, func(t *testing.T) {
			_, stderr, code := runCLI(t, tc.args...)
			assert.NotEqual(t, 0, code)
			assert.Contains(t, stderr, tc.want)
		})
	}
}
