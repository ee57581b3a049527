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
	o = verifyOptions{suite: "speed"}
	assert.EqualError(t, applySuite(&o), `--suite: "speed" is not a suite (want isolation)`)
}
