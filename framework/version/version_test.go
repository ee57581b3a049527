package version

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/guestcatalog/guestcatalog", Version: "v0.3.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}, {Key: "vcs.time", Value: "2026-12-07T00:00:00Z"}}}
	i := FromBuildInfo(bi)
	assert.Equal(t, Info{Module: "github.com/guestcatalog/guestcatalog", Version: "v0.3.0", Revision: "0123456789abcdef0123", Dirty: true, Time: "2026-12-07T00:00:00Z", GoVersion: "go1.26.8"}, i)
	i.CatalogDigest = "sha256:" + strings.Repeat("a", 64)
	assert.Equal(t, "guestcatalog v0.3.0 (0123456789ab, dirty), go1.26.8, catalog sha256:aaaaaaaaaaaa", i.String())

	clean := FromBuildInfo(&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "m"}})
	assert.Equal(t, "(devel)", clean.Version)
	assert.False(t, clean.Dirty)
}

func TestGetHasCatalogDigest(t *testing.T) {
	i := Get()
	require.Regexp(t, `^sha256:[0-9a-f]{64}$`, i.CatalogDigest)
	assert.NotEmpty(t, i.GoVersion)
}
