package freshness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSumsFormats(t *testing.T) {
	h256 := strings.Repeat("ab", 32)
	h512 := strings.Repeat("cd", 64)
	cases := map[string]struct {
		in         string
		file, algo string
		want       string
	}{
		"gnu two spaces (Debian, Alpine, Arch)": {h512 + "  debian-13-genericcloud-amd64-20260712-2537.qcow2\n", "debian-13-genericcloud-amd64-20260712-2537.qcow2", "sha512", h512},
		"gnu binary marker (Ubuntu)":            {h256 + " *ubuntu-24.04-server-cloudimg-amd64.img\n", "ubuntu-24.04-server-cloudimg-amd64.img", "sha256", h256},
		"bsd tagged (Rocky, Alma)":              {"# Rocky-9.qcow2: 123 bytes\nSHA256 (Rocky-9.qcow2) = " + strings.ToUpper(h256) + "\n", "Rocky-9.qcow2", "sha256", h256},
		"dot slash":                             {h256 + "  ./a.img\n", "a.img", "sha256", h256},
		"crlf":                                  {h256 + "  a.img\r\n", "a.img", "sha256", h256},
		"bare digest":                           {h512 + "\n", "anything.qcow2", "sha512", h512},
		"pgp clear-signed (Fedora)": {"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n" +
			"# F.qcow2: 5 bytes\nSHA256 (F.qcow2) = " + h256 + "\n- -dash escaped line\n" +
			"-----BEGIN PGP SIGNATURE-----\n\niQIzBAEBCAAdFiEE\n" + h256 + "  sig.qcow2\n=kR1v\n-----END PGP SIGNATURE-----\n", "F.qcow2", "sha256", h256},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, ok := ParseSums([]byte(c.in)).Lookup(c.file, c.algo)
			require.True(t, ok)
			assert.Equal(t, c.want, got)
		})
	}

	sums := ParseSums([]byte("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nSHA256 (a) = " + h256 +
		"\n-----BEGIN PGP SIGNATURE-----\n\n" + h256 + "  sig\n-----END PGP SIGNATURE-----\n"))
	_, ok := sums.Lookup("sig", "sha256")
	assert.False(t, ok, "nothing is read from the signature block")
	_, ok = sums.Lookup("a", "sha512")
	assert.False(t, ok, "no sha512 for a")
	assert.Equal(t, []string{"sha256"}, sums.Algos("a"))

	two := ParseSums([]byte(h256 + "  a\n" + h256 + "  b\n"))
	_, ok = two.Lookup("c", "sha256")
	assert.False(t, ok)
}

func TestParseSumsOfRealFormatFixtures(t *testing.T) {
	read := func(p string) Sums {
		b, err := os.ReadFile(filepath.Join(upstreamDir, p))
		require.NoError(t, err)
		return ParseSums(b)
	}
	fedora := read("dl.fedoraproject.org/pub/fedora/linux/releases/44/Cloud/aarch64/images/Fedora-Cloud-44-1.7-aarch64-CHECKSUM")
	assert.Len(t, fedora, 3)
	_, ok := fedora.Lookup("Fedora-Cloud-Base-Generic-44-1.7.aarch64.qcow2", "sha256")
	assert.True(t, ok)
	ubuntu := read("cloud-images.ubuntu.com/releases/noble/release-20260705/SHA256SUMS")
	_, ok = ubuntu.Lookup("ubuntu-24.04-server-cloudimg-arm64.img", "sha256")
	assert.True(t, ok)
	debian := read("cloud.debian.org/images/cloud/trixie/20260802-2580/SHA512SUMS")
	_, ok = debian.Lookup("debian-13-genericcloud-arm64-20260802-2580.qcow2", "sha512")
	assert.False(t, ok, "the newest Debian directory has no arm64 image yet")
}

func TestParseListing(t *testing.T) {
	read := func(p string) []string {
		b, err := os.ReadFile(filepath.Join(upstreamDir, p))
		require.NoError(t, err)
		return ParseListing(b)
	}
	// Apache, table layout (cloud.debian.org).
	assert.Equal(t, []string{"20260612-2480/", "20260712-2537/", "20260726-2551/", "20260802-2580/", "daily/", "latest/"},
		read("cloud.debian.org/images/cloud/trixie/index.html"))
	// Apache, <pre> layout with names truncated in the link text (Fedora).
	fedora := read("dl.fedoraproject.org/pub/fedora/linux/releases/44/Cloud/x86_64/images/index.html")
	assert.Contains(t, fedora, "Fedora-Cloud-44-1.8-x86_64-CHECKSUM")
	assert.Contains(t, fedora, "Fedora-Cloud-Base-Generic-44-1.8.x86_64.qcow2", "hrefs, not truncated texts")
	// nginx autoindex (Arch, Alpine, Rocky).
	assert.Equal(t, []string{"latest/", "v20260701.552316/", "v20260715.556894/", "v20260801.560012/"},
		read("geo.mirror.pkgbuild.com/images/index.html"))
	assert.Contains(t, read("dl-cdn.alpinelinux.org/alpine/v3.23/releases/cloud/index.html"),
		"nocloud_alpine-3.23.5-x86_64-uefi-cloudinit-r1.qcow2")
	// A table listing with titles (AlmaLinux's mirror).
	assert.Contains(t, read("repo.almalinux.org/almalinux/index.html"), "9.9/")

	assert.Equal(t, []string{"a b/", "c&d.img", "e.img"}, ParseListing([]byte(
		`<a href="?C=N;O=D">Name</a><a href="/icons/">x</a><a href="../">..</a><a href="https://x/y">ext</a>`+
			`<a href="a%20b/">a b/</a> <A HREF='c&amp;d.img'>c</A> <a class=x href=./e.img>e</a><a href="e.img">dup</a><a href="#top">t</a>`)))
}

func TestCompareVersions(t *testing.T) {
	ordered := []string{"3.9.1", "3.23.4", "3.23.5", "3.23.10"}
	for i := 1; i < len(ordered); i++ {
		assert.Equal(t, -1, compareVersions(ordered[i-1], ordered[i]), "%s < %s", ordered[i-1], ordered[i])
		assert.Equal(t, 1, compareVersions(ordered[i], ordered[i-1]))
	}
	assert.Equal(t, 0, compareVersions("20260712-2537", "20260712-2537"))
	assert.Equal(t, -1, compareVersions("20260712-2537", "20260726-2551"))
	assert.Equal(t, -1, compareVersions("20260705", "20260705.1"))
	assert.Equal(t, 1, compareVersions("1.10", "1.9"))
	assert.Equal(t, -1, compareVersions("", "1"))
}
