package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/cloudinit"
	"github.com/guestcatalog/guestcatalog/framework/sshx"
)

// renderOptions are the flags of `catalog render`.
type renderOptions struct {
	Out            string
	Arch           string
	ISO            bool
	Sets           []string
	Hostname       string
	InstanceID     string
	MAC            string
	AuthorizedKeys []string // files
	HostKey        string   // file
}

// Files `catalog render` writes besides the seed.
const (
	renderClientKey = "id_ed25519"
	renderHostKey   = "ssh_host_ed25519_key"
	renderKnownHost = "known_hosts"
	renderISO       = "seed.iso"
)

func newRenderCmd(a *app) *cobra.Command {
	var o renderOptions
	cmd := &cobra.Command{
		Use:   "render NAME|FILE --out DIR",
		Short: "Write the cloud-init NoCloud seed of a template (user-data, meta-data, network-config)",
		Long: `render writes the NoCloud seed that provisions a guest from template NAME (a
name or an alias), exactly as 'catalog verify' would boot it, so that it can
be read, diffed, validated ('cloud-init schema --config-file DIR/user-data')
or booted by hand.

The image is the template's first one for --arch; with the global --offline
flag it is its local build image, whose packages may be baked in (then the
seed installs no packages and needs no network).

Into DIR (created if missing) it writes:
  user-data, meta-data, network-config   the seed (user-data is mode 0600: it
                                         holds the host private key)
  seed.iso                               with --iso: the same three files on an
                                         ISO 9660 volume labelled cidata (0600)
  id_ed25519, id_ed25519.pub             a new throwaway client key, unless
                                         --authorized-key is given; the private
                                         key is mode 0600
  ssh_host_ed25519_key{,.pub}            a new throwaway host key the guest is
                                         given, unless --host-key is given; the
                                         private key is mode 0600
  known_hosts                            the host key for [127.0.0.1]:* and
                                         [localhost]:* (and --hostname)

Files of these names already in DIR are replaced (keys included).`,
		Example: `  catalog render debian-13-docker --out /tmp/seed
  catalog render ubuntu-k3s --out /tmp/seed --arch aarch64 --iso
  catalog --offline render debian-docker --out /tmp/seed --iso --mac 52:54:00:12:34:56
  catalog render debian-13-docker --out /tmp/seed --authorized-key ~/.ssh/id_ed25519.pub

  # then, with the guest's port 22 forwarded to 127.0.0.1:2222:
  ssh -i /tmp/seed/id_ed25519 -o UserKnownHostsFile=/tmp/seed/known_hosts -p 2222 guest@127.0.0.1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runRender(cmd.Context(), cmd.OutOrStdout(), args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Out, "out", "o", "", "directory to write the seed and keys into (required)")
	f.StringVar(&o.Arch, "arch", catalog.HostArch(), "guest architecture: x86_64 or aarch64")
	f.BoolVar(&o.ISO, "iso", false, "also write DIR/seed.iso, the seed as a cidata ISO 9660 image")
	f.StringArrayVar(&o.Sets, "set", nil,
		"override a param the template declares, NAME=VALUE (repeatable); scripts read it as $PARAM_NAME")
	f.StringVar(&o.Hostname, "hostname", "", "guest host name (default: from the template name)")
	f.StringVar(&o.InstanceID, "instance-id", "", "cloud-init instance ID (default: a hash of the seed)")
	f.StringVar(&o.MAC, "mac", "", "pin network-config to the NIC with this MAC (default: cloud-init's fallback, DHCP on the first NIC)")
	f.StringArrayVar(&o.AuthorizedKeys, "authorized-key", nil,
		"public key file (authorized_keys format) allowed to log in (repeatable); default: a new key in DIR/id_ed25519")
	f.StringVar(&o.HostKey, "host-key", "", "OpenSSH private key file to use as the guest's host key; default: a new one in DIR/"+renderHostKey)
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func (a *app) runRender(ctx context.Context, out io.Writer, name string, o renderOptions) error {
	params, err := parseSets(o.Sets)
	if err != nil {
		return err
	}
	if err := a.checkArch(o.Arch); err != nil {
		return err
	}
	ts, err := a.argTemplates(ctx, []string{name}, catalog.WithParams(params))
	if err != nil {
		return err
	}
	if len(ts) != 1 {
		return usagef("%s holds %d templates; render writes the seed of one", name, len(ts))
	}
	t := ts[0]
	img, err := renderImage(t, o.Arch, a.offline)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", o.Out, err)
	}
	var wrote []string

	var keys []string
	for _, f := range o.AuthorizedKeys {
		k, err := readAuthorizedKeys(f)
		if err != nil {
			return err
		}
		keys = append(keys, k...)
	}
	if len(o.AuthorizedKeys) == 0 {
		kp, err := sshx.NewKeyPair(o.Out, "guestcatalog-"+t.Name)
		if err != nil {
			return fmt.Errorf("generating a client key: %w", err)
		}
		keys = append(keys, kp.AuthorizedKey)
		wrote = append(wrote, kp.PrivateKeyPath, kp.PrivateKeyPath+".pub")
	}

	var hostPEM, hostPub string
	if o.HostKey != "" {
		if hostPEM, hostPub, err = readHostKey(o.HostKey); err != nil {
			return err
		}
	} else {
		hk, err := sshx.NewHostKey("guestcatalog-" + t.Name + "-host")
		if err != nil {
			return fmt.Errorf("generating a host key: %w", err)
		}
		hostPEM, hostPub = hk.PrivatePEM, hk.PublicLine
		priv := filepath.Join(o.Out, renderHostKey)
		if err := writeFileMode(priv, []byte(hostPEM), 0o600); err != nil {
			return err
		}
		if err := writeFileMode(priv+".pub", []byte(hostPub+"\n"), 0o644); err != nil {
			return err
		}
		wrote = append(wrote, priv, priv+".pub")
	}

	seed, err := cloudinit.Render(t, cloudinit.Input{
		Arch:              o.Arch,
		Image:             img,
		Hostname:          o.Hostname,
		InstanceID:        o.InstanceID,
		AuthorizedKeys:    keys,
		HostKeyPrivatePEM: hostPEM,
		HostKeyPublic:     hostPub,
		MACAddress:        o.MAC,
	})
	if err != nil {
		return err
	}
	if err := seed.WriteDir(o.Out); err != nil {
		return err
	}
	for _, n := range []string{cloudinit.FileUserData, cloudinit.FileMetaData, cloudinit.FileNetworkConfig} {
		wrote = append(wrote, filepath.Join(o.Out, n))
	}
	kh := filepath.Join(o.Out, renderKnownHost)
	patterns := "[127.0.0.1]:*,[localhost]:*"
	if o.Hostname != "" {
		patterns += "," + o.Hostname
	}
	if err := writeFileMode(kh, []byte(patterns+" "+strings.TrimSpace(hostPub)+"\n"), 0o644); err != nil {
		return err
	}
	wrote = append(wrote, kh)
	if o.ISO {
		iso := filepath.Join(o.Out, renderISO)
		if err := cloudinit.WriteSeedISO(iso, seed); err != nil {
			return err
		}
		wrote = append(wrote, iso)
	}

	source := img.Location
	if img.Build != nil {
		source = "build:" + img.Build.Suite
		if img.Build.Bake {
			source += " (packages baked in)"
		}
	}
	fmt.Fprintf(out, "template %s (%s), image %s\n", t.Name, o.Arch, source)
	for _, p := range wrote {
		fmt.Fprintf(out, "wrote %s\n", p)
	}
	if pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(hostPub)); err == nil {
		fmt.Fprintf(out, "host key %s\n", ssh.FingerprintSHA256(pub))
	}
	return nil
}

// renderImage picks the image the seed is rendered for: the first for
// arch, or with offline the first local build.
func renderImage(t *catalog.Template, arch string, offline bool) (catalog.Image, error) {
	images := t.ImagesFor(arch)
	if len(images) == 0 {
		return catalog.Image{}, fmt.Errorf("template %s has no image for %s (it has: %s)", t.Name, arch, strings.Join(t.Arches(), ", "))
	}
	if !offline {
		return images[0], nil
	}
	for _, im := range images {
		if im.Build != nil {
			return im, nil
		}
	}
	return catalog.Image{}, fmt.Errorf("template %s has no local build image for %s: --offline cannot render it", t.Name, arch)
}

// readAuthorizedKeys reads the keys of an authorized_keys-style file.
func readAuthorizedKeys(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--authorized-key: %w", err)
	}
	var keys []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line)); err != nil {
			return nil, fmt.Errorf("--authorized-key %s: %w", path, err)
		}
		keys = append(keys, line)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("--authorized-key %s: no public key in the file", path)
	}
	return keys, nil
}

// readHostKey reads an unencrypted OpenSSH private key and derives its
// public key line.
func readHostKey(path string) (privatePEM, public string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("--host-key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(b)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return "", "", fmt.Errorf("--host-key %s: the key has a passphrase; a host key must not", path)
	}
	if err != nil {
		return "", "", fmt.Errorf("--host-key %s: %w", path, err)
	}
	return string(b), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))), nil
}

func writeFileMode(path string, data []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	// WriteFile keeps the mode of a file that exists already.
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
