package cloudinit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
)

func testSeed(t *testing.T) *Seed {
	s, err := Render(fixtureDebianDocker(), testInput(t, catalog.ArchX8664))
	require.NoError(t, err)
	return s
}

// onlyFiles lists dir, failing on leftovers such as temporary files.
func onlyFiles(t *testing.T, dir string) []string {
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteDir(t *testing.T) {
	s := testSeed(t)
	dir := filepath.Join(t.TempDir(), "seed")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, FileUserData), []byte("old"), 0o644))
	require.NoError(t, s.WriteDir(dir))
	require.NoError(t, s.WriteDir(dir), "rewriting is fine")
	assert.ElementsMatch(t, []string{"meta-data", "network-config", "user-data"}, onlyFiles(t, dir))
	for name, want := range map[string][]byte{FileUserData: s.UserData, FileMetaData: s.MetaData, FileNetworkConfig: s.NetworkConfig} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), name)
	}
	st, err := os.Stat(filepath.Join(dir, FileUserData))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "user-data holds the host private key")

	// A directory that cannot be created is an error.
	blocker := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o644))
	assert.Error(t, s.WriteDir(filepath.Join(blocker, "seed")))
}

func TestWriteSeedISO(t *testing.T) {
	s := testSeed(t)
	dir := t.TempDir()
	iso := filepath.Join(dir, "seed.iso")
	require.NoError(t, WriteSeedISO(iso, s))
	assert.Equal(t, []string{"seed.iso"}, onlyFiles(t, dir), "no temporary file left behind")
	st, err := os.Stat(iso)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	assert.Zero(t, st.Size()%isoBlock)
	assert.Less(t, st.Size(), int64(1<<20), "cut to the volume size")

	back, label, err := readSeedISO(iso)
	require.NoError(t, err)
	assert.Equal(t, VolumeLabel, label)
	assert.Equal(t, s, back)

	// Overwrite in place.
	s2 := *s
	s2.MetaData = []byte("instance-id: other\nlocal-hostname: other\n")
	require.NoError(t, WriteSeedISO(iso, &s2))
	back, _, err = readSeedISO(iso)
	require.NoError(t, err)
	assert.Equal(t, s2.MetaData, back.MetaData)

	assert.Error(t, WriteSeedISO(filepath.Join(dir, "missing", "seed.iso"), s))
	assert.Error(t, WriteSeedISO(iso, nil))
	assert.Equal(t, []string{"seed.iso"}, onlyFiles(t, dir))
}

func TestWriteSeedISOLarge(t *testing.T) {
	// Larger than the image's initial size: the size follows the content.
	var big bytes.Buffer
	for i := 0; big.Len() < 3<<20; i++ {
		fmt.Fprintf(&big, "# line %d of a large user-data\n", i)
	}
	s := &Seed{UserData: big.Bytes(), MetaData: []byte("instance-id: big\n"), NetworkConfig: []byte("# none\n")}
	iso := filepath.Join(t.TempDir(), "seed.iso")
	require.NoError(t, WriteSeedISO(iso, s))
	back, _, err := readSeedISO(iso)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(s.UserData, back.UserData))
}
