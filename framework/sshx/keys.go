package sshx

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// KeyPair is a client key for one run: the guest authorizes AuthorizedKey,
// the framework signs with Signer, and a user can `ssh -i PrivateKeyPath`.
type KeyPair struct {
	Signer ssh.Signer
	// PrivateKeyPEM is the private key in OpenSSH format.
	PrivateKeyPEM []byte
	// AuthorizedKey is the public key as an authorized_keys line, without
	// the trailing newline ("ssh-ed25519 AAAA... comment").
	AuthorizedKey string
	// PrivateKeyPath is where the private key was written ("" if nowhere).
	PrivateKeyPath string
}

// NewKeyPair generates an ed25519 client key. When dir is not empty it
// writes dir/id_ed25519 (mode 0600, OpenSSH format) and dir/id_ed25519.pub.
func NewKeyPair(dir, comment string) (*KeyPair, error) {
	signer, pemBytes, err := newEd25519(comment)
	if err != nil {
		return nil, err
	}
	kp := &KeyPair{
		Signer:        signer,
		PrivateKeyPEM: pemBytes,
		AuthorizedKey: authorizedLine(signer.PublicKey(), comment),
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("creating key dir: %w", err)
		}
		kp.PrivateKeyPath = filepath.Join(dir, "id_ed25519")
		if err := writeFile0600(kp.PrivateKeyPath, pemBytes); err != nil {
			return nil, err
		}
		if err := os.WriteFile(kp.PrivateKeyPath+".pub", []byte(kp.AuthorizedKey+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("writing public key: %w", err)
		}
	}
	return kp, nil
}

// HostKey is a guest's SSH host key generated on the host: cloud-init
// installs PrivatePEM (ssh_keys.ed25519_private / ed25519_public) and the
// framework pins PublicKey, so the first connection is already verified.
type HostKey struct {
	// PrivatePEM is the private key in OpenSSH format, as sshd reads it.
	PrivatePEM string
	PublicKey  ssh.PublicKey
	// PublicLine is "ssh-ed25519 AAAA... comment" (no newline).
	PublicLine string
}

// NewHostKey generates an ed25519 host key.
func NewHostKey(comment string) (*HostKey, error) {
	signer, pemBytes, err := newEd25519(comment)
	if err != nil {
		return nil, err
	}
	return &HostKey{
		PrivatePEM: string(pemBytes),
		PublicKey:  signer.PublicKey(),
		PublicLine: authorizedLine(signer.PublicKey(), comment),
	}, nil
}

// Fingerprint is the SHA256 fingerprint of the public key, as ssh prints it.
func (h *HostKey) Fingerprint() string { return ssh.FingerprintSHA256(h.PublicKey) }

// ParsePublicKey parses an authorized_keys / known_hosts style key line
// ("ssh-ed25519 AAAA... [comment]").
func ParsePublicKey(line string) (ssh.PublicKey, error) {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, fmt.Errorf("parsing public key: %w", err)
	}
	return pub, nil
}

func newEd25519(comment string) (ssh.Signer, []byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating ed25519 key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("ed25519 signer: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding ed25519 key: %w", err)
	}
	return signer, pem.EncodeToMemory(block), nil
}

func authorizedLine(pub ssh.PublicKey, comment string) string {
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	if comment != "" {
		line += " " + comment
	}
	return line
}

func writeFile0600(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	// An existing file keeps its mode on O_TRUNC: force 0600 (ssh refuses
	// a key readable by others).
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	return f.Close()
}
