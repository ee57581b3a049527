package imagebuild

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MaskedUnits() are masked in every image (a symlink to /dev/null, which
// survives systemd's first-boot presets). Each costs boot time under TCG or
// interferes with a test guest:
//   - apt-daily*, dpkg-db-backup, man-db timers: would take dpkg's lock
//     while provisioning installs packages, and do useless work;
//   - e2scrub_*, fstrim: periodic disk maintenance of a throwaway disk;
//   - sshd-keygen: would generate RSA and ECDSA host keys on first boot
//     (seconds of RSA under TCG) although cloud-init writes the pinned
//     ed25519 key, the only one sshd is configured to use;
//   - systemd-firstboot: would prompt for locale, keymap and root password
//     on the serial console of a first boot (empty machine-id);
//   - getty@tty1: there is no VGA console (serial only; the serial getty
//     stays);
//   - modprobe@drm, modprobe@efi_pstore: no GPU and no EFI variables in a
//     direct-kernel-boot guest; each is a modprobe process competing for
//     the two vCPUs with cloud-init's start (measured 3.6–4.6 s each under
//     TCG).
func MaskedUnits() []string {
	return []string{
		"apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "man-db.timer",
		"e2scrub_all.timer", "e2scrub_reap.service", "fstrim.timer",
		"sshd-keygen.service", "systemd-firstboot.service", "getty@tty1.service",
		"modprobe@drm.service", "modprobe@efi_pstore.service",
	}
}

// EnabledUnits() are enabled by the mmdebstrap customize hook (the guest's own
// systemctl): systemd-networkd renders cloud-init's network-config (v2 →
// networkd on a Debian without netplan or ifupdown).
func EnabledUnits() []string {
	return []string{"systemd-networkd.service"}
}

// cloudCfg is /etc/cloud/cloud.cfg.d/90-guestcatalog.cfg.
const cloudCfg = `# Written by guestcatalog's image builder.
# Only the NoCloud seed (cidata) is looked for: no network datasource probes.
datasource_list: [NoCloud, None]
# Host keys: remove any baked ones, and generate only ed25519 when user-data
# does not provide it (RSA keygen takes seconds under TCG).
ssh_deletekeys: true
ssh_genkeytypes: [ed25519]
# The pinned key is known to the framework: printing every host key's
# fingerprint to the console only delays cloud-init's final stage.
ssh:
  emit_keys_to_console: false
# /etc/hosts names the instance's hostname (sudo then stays quiet).
manage_etc_hosts: true
# The root filesystem is the whole disk (/dev/vda, no partition table):
# growpart has nothing to do, resizefs grows the filesystem online.
growpart:
  mode: "off"
resize_rootfs: true
system_info:
  network:
    renderers: [networkd]
    activators: [networkd]
`

const fstab = `# Written by guestcatalog's image builder: the root filesystem is the
# whole disk, found by its label.
LABEL=` + FSLabel + ` / ext4 defaults,noatime,errors=remount-ro 0 1
`

const hosts = `127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
`

// waitOnlineDropIn makes network-online.target (which cloud-init's later
// stages wait for) wait for one link with IPv4, at most 60 s, instead of
// every link fully configured (an IPv6 that never comes under QEMU's user
// networking would hold the boot for the default 120 s).
const waitOnlineDropIn = `[Service]
ExecStart=
ExecStart=/usr/lib/systemd/systemd-networkd-wait-online --any --ipv4 --timeout=60
`

// sshdCloudInit pre-seeds the file cloud-init's set-passwords module edits
// with the value user-data sets (ssh_pwauth: false): cloud-init then finds
// nothing to change and does not restart sshd in the middle of the boot.
const sshdCloudInit = `PasswordAuthentication no
`

// localeDefault is what cloud-init's locale module would write (C.UTF-8,
// Debian's default); when it is there, the module skips update-locale.
const localeDefault = `LANG=C.UTF-8
`

// sshdConfig restricts sshd to the ed25519 host key cloud-init writes.
const sshdConfig = `# Written by guestcatalog's image builder.
HostKey /etc/ssh/ssh_host_ed25519_key
`

const aptConf = `// Written by guestcatalog's image builder: no translation indexes.
Acquire::Languages "none";
`

// dpkgUnsafeIO: a test guest's disk is thrown away; dpkg's fsyncs make
// package installs at provisioning time much slower under TCG.
const dpkgUnsafeIO = `# Written by guestcatalog's image builder.
force-unsafe-io
`

// Hostname is the placeholder hostname; cloud-init sets the instance's own.
const Hostname = "guestcatalog"

// Customize tunes a freshly bootstrapped root directory for a fast, correct
// cloud-init boot under QEMU. It only writes files (no chroot, no mounts),
// so it is unit-tested on a plain directory.
func Customize(root string) error {
	files := []struct {
		path, content string
		mode          fs.FileMode
	}{
		{"etc/cloud/cloud.cfg.d/90-guestcatalog.cfg", cloudCfg, 0o644},
		{"etc/fstab", fstab, 0o644},
		{"etc/hostname", Hostname + "\n", 0o644},
		{"etc/hosts", hosts, 0o644},
		// Empty: systemd makes a new machine-id on first boot, so every
		// guest gets its own (DHCP client id, journal).
		{"etc/machine-id", "", 0o444},
		{"etc/ssh/sshd_config.d/90-guestcatalog.conf", sshdConfig, 0o644},
		{"etc/ssh/sshd_config.d/50-cloud-init.conf", sshdCloudInit, 0o600},
		{"etc/systemd/system/systemd-networkd-wait-online.service.d/90-guestcatalog.conf", waitOnlineDropIn, 0o644},
		{"etc/apt/apt.conf.d/90guestcatalog", aptConf, 0o644},
		{"etc/dpkg/dpkg.cfg.d/90guestcatalog", dpkgUnsafeIO, 0o644},
	}
	for _, f := range files {
		if err := writeFile(root, f.path, f.content, f.mode); err != nil {
			return err
		}
	}
	if err := writeLocale(root); err != nil {
		return err
	}
	// The bootstrap copied the host's resolv.conf; the guest uses
	// systemd-resolved's stub, fed by networkd from DHCP.
	if err := replaceWithSymlink(root, "etc/resolv.conf", "../run/systemd/resolve/stub-resolv.conf"); err != nil {
		return err
	}
	// A D-Bus machine-id copied at build time would be shared by guests.
	if err := removeIfRegular(root, "var/lib/dbus/machine-id"); err != nil {
		return err
	}
	// Host keys generated by openssh-server's postinst at build time would
	// be shared by every guest; cloud-init writes the instance's own.
	keys, err := filepath.Glob(filepath.Join(root, "etc/ssh/ssh_host_*"))
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := os.Remove(k); err != nil {
			return fmt.Errorf("removing build-time host key: %w", err)
		}
	}
	for _, u := range MaskedUnits() {
		if err := replaceWithSymlink(root, filepath.Join("etc/systemd/system", u), "/dev/null"); err != nil {
			return err
		}
	}
	return markUpdated(root)
}

// markUpdated writes /etc/.updated and /var/.updated as
// systemd-update-done would, stamped with /usr's time. Without them the
// first boot runs the ConditionNeedsUpdate= units (ldconfig, sysusers,
// journal catalog, hwdb, update-done: measured 3, 1.9, 1.4 and 1 s under
// TCG) although the package scripts did that work at build time.
func markUpdated(root string) error {
	usr, err := os.Stat(filepath.Join(root, "usr"))
	if err != nil {
		return fmt.Errorf("customizing rootfs: %w", err)
	}
	t := usr.ModTime()
	content := fmt.Sprintf("# This file was created by guestcatalog's image builder, as\n"+
		"# systemd-update-done would. See man:systemd-update-done.service(8).\nTIMESTAMP_NSEC=%d\n", t.UnixNano())
	for _, dir := range []string{"etc", "var"} {
		rel := filepath.Join(dir, ".updated")
		if err := writeFile(root, rel, content, 0o644); err != nil {
			return err
		}
		if err := os.Chtimes(filepath.Join(root, rel), t, t); err != nil {
			return fmt.Errorf("customizing rootfs: %w", err)
		}
	}
	return nil
}

// writeLocale writes the default locale where the system keeps it: trixie
// makes /etc/default/locale a symlink to ../locale.conf (and systemd-tmpfiles
// restores that link at boot), bookworm has a plain file.
func writeLocale(root string) error {
	rel := "etc/default/locale"
	p, err := inRoot(root, rel)
	if err != nil {
		return err
	}
	if target, err := os.Readlink(p); err == nil {
		if !filepath.IsAbs(target) {
			target = filepath.Join("/etc/default", target)
		}
		if t := filepath.Clean(target); strings.HasPrefix(t, "/etc/") {
			rel = strings.TrimPrefix(t, "/")
		}
	}
	return writeFile(root, rel, localeDefault, 0o644)
}

// inRoot joins rel to root and refuses paths that leave it.
func inRoot(root, rel string) (string, error) {
	p := filepath.Join(root, rel)
	if !strings.HasPrefix(p, filepath.Clean(root)+string(filepath.Separator)) {
		return "", fmt.Errorf("path %q leaves the root directory", rel)
	}
	return p, nil
}

func writeFile(root, rel, content string, mode fs.FileMode) error {
	p, err := inRoot(root, rel)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("customizing rootfs: %w", err)
	}
	// Replace, never write through a symlink the bootstrap left there.
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("customizing rootfs: %w", err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		return fmt.Errorf("customizing rootfs: %w", err)
	}
	return os.Chmod(p, mode) // WriteFile's mode is subject to the umask
}

func replaceWithSymlink(root, rel, target string) error {
	p, err := inRoot(root, rel)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("customizing rootfs: %w", err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("customizing rootfs: %w", err)
	}
	if err := os.Symlink(target, p); err != nil {
		return fmt.Errorf("customizing rootfs: %w", err)
	}
	return nil
}

func removeIfRegular(root, rel string) error {
	p, err := inRoot(root, rel)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().IsRegular() {
		return os.Remove(p)
	}
	return nil
}
