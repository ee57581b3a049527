package main

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework/config"
)

// Artifacts used to default to /tmp/guestcatalog-artifacts, one directory
// shared by every user of the host.
func TestArtifactsDefaultUnderCacheDir(t *testing.T) {
	cache := t.TempDir()
	env := testEnv("GUESTCATALOG_CACHE="+cache, "ARTIFACTS=")
	cfg, err := config.Parse(env)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(cache, "artifacts"), cfg.ArtifactsDir)

	a := &app{env: env, envCfg: cfg}
	root := newRootCmd(a)
	other := t.TempDir()
	root.SetArgs([]string{"--cache-dir", other, "verify", "--help"})
	root.SetOut(&discard{})
	require.NoError(t, root.Execute())
	assert.Equal(t, filepath.Join(other, "artifacts"), a.verifyConfig(verifyOptions{artifacts: cfg.ArtifactsDir}).ArtifactsDir, "the default follows --cache-dir")
	assert.Equal(t, "/x", a.verifyConfig(verifyOptions{artifacts: "/x"}).ArtifactsDir, "--artifacts wins")
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }
