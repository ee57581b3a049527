package provisioned

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func stageAll(t *testing.T, st *Staging) {
	for _, f := range []string{FileDisk, FileClientKey, FileHostKey, FileSeed} {
		require.NoError(t, os.WriteFile(st.Path(f), []byte(f), 0o600))
	}
}

func TestKeyIsSensitiveToEveryPart(t *testing.T) {
	base := Key("img", "tmpl", "ud")
	assert.Equal(t, base, Key("img", "tmpl", "ud"))
	assert.NotEqual(t, base, Key("img2", "tmpl", "ud"))
	assert.NotEqual(t, base, Key("img", "tmpl", "ud2"))
	// Part boundaries count: ("ab","c") is not ("a","bc").
	assert.NotEqual(t, Key("ab", "c"), Key("a", "bc"))
}

func TestCommitLookupAndBrokenEntries(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	require.NoError(t, err)
	baseImg := filepath.Join(dir, "base.qcow2")
	require.NoError(t, os.WriteFile(baseImg, []byte("base"), 0o644))

	_, ok := s.Lookup("k1")
	assert.False(t, ok, "empty store")

	unlock, err := s.Lock(context.Background(), "k1")
	require.NoError(t, err)
	st, err := s.Stage()
	require.NoError(t, err)
	// A commit with a file missing fails and leaves nothing visible.
	_, err = st.Commit(Meta{Key: "k1", Base: baseImg})
	require.Error(t, err)
	_, ok = s.Lookup("k1")
	assert.False(t, ok)

	stageAll(t, st)
	e, err := st.Commit(Meta{Key: "k1", Template: "debian-13-docker", Base: baseImg, Snapshot: SnapshotName})
	require.NoError(t, err)
	unlock()
	got, ok := s.Lookup("k1")
	require.True(t, ok)
	assert.Equal(t, e.Dir, got.Dir)
	assert.Equal(t, "debian-13-docker", got.Meta.Template)
	list, err := s.List()
	require.NoError(t, err)
	assert.Len(t, list, 1)

	// The base image disappears: the entry is unusable and removed.
	require.NoError(t, os.Remove(baseImg))
	_, ok = s.Lookup("k1")
	assert.False(t, ok)
	_, err = os.Stat(e.Dir)
	assert.True(t, os.IsNotExist(err))
}

func TestLookupRemovesEntryWithMissingFile(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	require.NoError(t, err)
	st, err := s.Stage()
	require.NoError(t, err)
	stageAll(t, st)
	e, err := st.Commit(Meta{Key: "k2", Base: dir})
	require.NoError(t, err)
	require.NoError(t, os.Remove(e.Path(FileSeed)))
	_, ok := s.Lookup("k2")
	assert.False(t, ok)
}
