package provisioned

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/cloudinit"
	"github.com/guestcatalog/guestcatalog/framework/image"
)

// TemplateKey is the entry key of a template's saved guest: a hash of what
// provisioning depends on — the image (digest and source), the resolved
// template, the user-data it renders to (with a fixed placeholder key in
// place of the per-run keys) and the arch. verify and the instances of
// framework/instance use this one definition, so each finds the guest the
// other saved.
func TemplateKey(t *catalog.Template, img *image.Artifact, arch string) (string, error) {
	tj, err := json.Marshal(t)
	if err != nil {
		return "", err
	}
	seed, err := cloudinit.Render(t, cloudinit.Input{Arch: arch, Image: img.Entry, InstanceID: "iid-key",
		AuthorizedKeys: []string{placeholderKey()}})
	if err != nil {
		return "", fmt.Errorf("rendering user-data for the provisioned-disk key: %w", err)
	}
	return Key(img.Source, img.Digest, string(tj), string(seed.UserData), string(seed.NetworkConfig), arch), nil
}

// placeholderKey is a fixed public key standing in for the per-run keys
// when user-data is rendered for the key.
func placeholderKey() string {
	pub, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public())
	if err != nil {
		panic(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
}
