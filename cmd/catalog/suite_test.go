package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestApplySuite(t *testing.T) {
	o := verifyOptions{suite: "isolation"}
	require.NoError(t, applySuite(&o))
	assert.Equal(t, "suite:isolation", o.labelFilter)
	o = verifyOptions{suite: "isolation", labelFilter: "arch:x86_64"}
	require.NoError(t, applySuite(&o))
	assert.Equal(t, "(arch:x86_64) && suite:isolation", o.labelFilter)
	// No suite: the isolation specs of non-strict templates are left out.
	o = verifyOptions{}
	require.NoError(t, applySuite(&o))
	assert.Equal(t, "!suite:isolation || isolation:strict", o.labelFilter)
	o = verifyOptions{labelFilter: "engine:docker"}
	require.NoError(t, applySuite(&o))
	assert.Equal(t, "(engine:docker) && (!suite:isolation || isolation:strict)", o.labelFilter)
	o = verifyOptions{labelFilter: "suite:isolation && engine:docker"}
	require.NoError(t, applySuite(&o))
	assert.Equal(t, "suite:isolation && engine:docker", o.labelFilter, "an explicit isolation filter is kept")
	o = verifyOptions{suite: "speed"}
	assert.EqualError(t, applySuite(&o), `--suite: "speed" is not a suite (want isolation)`)
}
