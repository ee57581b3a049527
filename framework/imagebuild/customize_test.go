package imagebuild

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeRoot is a directory shaped like a fresh bootstrap: the host's
// resolv.conf copied in, build-time host keys, an enabled timer.
func fakeRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"etc/resolv.conf":                     "nameserver 192.0.2.1\n",
		"etc/hostname":                        "buildhost\n",
		"etc/machine-id":                      "0123456789abcdef0123456789abcdef\n",
		"var/lib/dbus/machine-id":             "0123456789abcdef0123456789abcdef\n",
		"etc/ssh/ssh_host_rsa_key":            "secret",
		"etc/ssh/ssh_host_rsa_key.pub":        "public",
		"etc/ssh/ssh_host_ed25519_key":        "secret",
		"etc/ssh/ssh_host_ed25519_key.pub":    "public",
		"etc/ssh/sshd_config":                 "Include /etc/ssh/sshd_config.d/*.conf\n",
		"etc/cloud/cloud.cfg":                 "users: [default]\n",
		"usr/lib/systemd/system/fstrim.timer": "[Timer]\n",
	}
	for p, c := range files {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, p), []byte(c), 0o644))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc/systemd/system/timers.target.wants"), 0o755))
	require.NoError(t, os.Symlink("/usr/lib/systemd/system/fstrim.timer", filepath.Join(root, "etc/systemd/system/timers.target.wants/fstrim.timer")))
	return root
}

func readRoot(t *testing.T, root, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	require.NoError(t, err)
	return string(b)
}

func TestCustomize(t *testing.T) {
	root := fakeRoot(t)
	require.NoError(t, Customize(root))

	// cloud-init: NoCloud only, networkd, ed25519 only; valid YAML.
	var cfg map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(readRoot(t, root, "etc/cloud/cloud.cfg.d/90-guestcatalog.cfg")), &cfg))
	assert.Equal(t, []any{"NoCloud", "None"}, cfg["datasource_list"])
	assert.Equal(t, []any{"ed25519"}, cfg["ssh_genkeytypes"])
	assert.Equal(t, true, cfg["resize_rootfs"])
	assert.Equal(t, map[string]any{"emit_keys_to_console": false}, cfg["ssh"])
	assert.Equal(t, "PasswordAuthentication no\n", readRoot(t, root, "etc/ssh/sshd_config.d/50-cloud-init.conf"))
	assert.Equal(t, "LANG=C.UTF-8\n", readRoot(t, root, "etc/default/locale"), "bookworm: a plain file")
	assert.Equal(t, map[string]any{"network": map[string]any{"renderers": []any{"networkd"}, "activators": []any{"networkd"}}}, cfg["system_info"])

	assert.Contains(t, readRoot(t, root, "etc/fstab"), "LABEL=root / ext4 ")
	assert.Equal(t, "guestcatalog\n", readRoot(t, root, "etc/hostname"))
	assert.Contains(t, readRoot(t, root, "etc/hosts"), "127.0.0.1\tlocalhost")
	assert.Empty(t, readRoot(t, root, "etc/machine-id"), "every guest makes its own machine-id")
	assert.NoFileExists(t, filepath.Join(root, "var/lib/dbus/machine-id"))
	assert.Equal(t, "HostKey /etc/ssh/ssh_host_ed25519_key\n", lastLine(readRoot(t, root, "etc/ssh/sshd_config.d/90-guestcatalog.conf")))
	assert.Contains(t, readRoot(t, root, "etc/systemd/system/systemd-networkd-wait-online.service.d/90-guestcatalog.conf"), "--any --ipv4")
	assert.Contains(t, readRoot(t, root, "etc/dpkg/dpkg.cfg.d/90guestcatalog"), "force-unsafe-io")
	assert.Contains(t, readRoot(t, root, "etc/apt/apt.conf.d/90guestcatalog"), `Acquire::Languages "none";`)

	target, err := os.Readlink(filepath.Join(root, "etc/resolv.conf"))
	require.NoError(t, err)
	assert.Equal(t, "../run/systemd/resolve/stub-resolv.conf", target)

	keys, err := filepath.Glob(filepath.Join(root, "etc/ssh/ssh_host_*"))
	require.NoError(t, err)
	assert.Empty(t, keys, "build-time host keys would be shared by every guest")

	for _, u := range MaskedUnits() {
		target, err := os.Readlink(filepath.Join(root, "etc/systemd/system", u))
		require.NoError(t, err, u)
		assert.Equal(t, "/dev/null", target, u)
	}

	fi, err := os.Stat(filepath.Join(root, "etc/fstab"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())

	// First-boot "needs update" units are satisfied: the stamps are not
	// older than /usr.
	usr, err := os.Stat(filepath.Join(root, "usr"))
	require.NoError(t, err)
	for _, f := range []string{"etc/.updated", "var/.updated"} {
		fi, err := os.Stat(filepath.Join(root, f))
		require.NoError(t, err)
		assert.False(t, usr.ModTime().After(fi.ModTime()), f)
		assert.Contains(t, readRoot(t, root, f), fmt.Sprintf("TIMESTAMP_NSEC=%d\n", usr.ModTime().UnixNano()))
	}

	// Idempotent: customizing twice gives the same tree.
	require.NoError(t, Customize(root))
}

func TestCustomizeReplacesSymlinksInsteadOfWritingThrough(t *testing.T) {
	root := fakeRoot(t)
	outside := filepath.Join(t.TempDir(), "host-file")
	require.NoError(t, os.WriteFile(outside, []byte("keep me"), 0o644))
	require.NoError(t, os.Remove(filepath.Join(root, "etc/hostname")))
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "etc/hostname")))

	require.NoError(t, Customize(root))
	assert.Equal(t, "keep me", readRoot(t, filepath.Dir(outside), "host-file"))
	assert.Equal(t, "guestcatalog\n", readRoot(t, root, "etc/hostname"))
}

// trixie: /etc/default/locale is a link to ../locale.conf that
// systemd-tmpfiles restores at boot; the content goes to its target.
func TestCustomizeWritesTheLocaleThroughTrixiesLink(t *testing.T) {
	root := fakeRoot(t)
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc/default"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/locale.conf"), []byte("#  File generated by update-locale\n"), 0o644))
	require.NoError(t, os.Symlink("../locale.conf", filepath.Join(root, "etc/default/locale")))
	require.NoError(t, Customize(root))
	target, err := os.Readlink(filepath.Join(root, "etc/default/locale"))
	require.NoError(t, err)
	assert.Equal(t, "../locale.conf", target)
	assert.Equal(t, "LANG=C.UTF-8\n", readRoot(t, root, "etc/locale.conf"))
}

func TestInRootRefusesEscapes(t *testing.T) {
	_, err := inRoot("/srv/root", "../etc/passwd")
	assert.Error(t, err)
	p, err := inRoot("/srv/root", "etc/passwd")
	require.NoError(t, err)
	assert.Equal(t, "/srv/root/etc/passwd", p)
}

func lastLine(s string) string {
	lines := splitLines(s)
	return lines[len(lines)-1] + "\n"
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}
