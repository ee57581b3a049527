package cloudinit

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current output")

type goldenCase struct {
	name string
	tpl  *catalog.Template
	in   Input
}

func fixtureCases(t *testing.T) []goldenCase {
	baked, img := fixtureDebianBaked()
	bakedIn := testInput(t, catalog.ArchX8664)
	bakedIn.Image = img
	bakedIn.MACAddress = "52:54:00:12:34:56"
	return []goldenCase{
		{"debian-13-docker", fixtureDebianDocker(), testInput(t, catalog.ArchX8664)},
		{"debian-13-containerd-baked", baked, bakedIn},
		{"alpine-3.23-podman-aarch64", fixtureAlpine(), testInput(t, catalog.ArchAarch64)},
		{"tricky-values", fixtureTricky(), testInput(t, catalog.ArchX8664)},
	}
}

// checkGolden compares got with testdata/golden/<name>, or rewrites it
// under -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file: run go test ./cloudinit -run Golden -update")
	assert.Equal(t, string(want), string(got), "%s differs: review, then go test ./cloudinit -run Golden -update", path)
}

func checkSeedGolden(t *testing.T, prefix string, s *Seed) {
	checkGolden(t, prefix+".user-data.yaml", s.UserData)
	checkGolden(t, prefix+".meta-data.yaml", s.MetaData)
	checkGolden(t, prefix+".network-config.yaml", s.NetworkConfig)
}

func TestGoldenFixtures(t *testing.T) {
	for _, c := range fixtureCases(t) {
		t.Run(c.name, func(t *testing.T) {
			s, err := Render(c.tpl, c.in)
			require.NoError(t, err)
			checkSeedGolden(t, c.name, s)
		})
	}
}
