package catalog

import (
	"crypto/sha256"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEmbeddedDigestStable(t *testing.T) {
	a, err := EmbeddedDigest()
	require.NoError(t, err)
	b, err := EmbeddedDigest()
	require.NoError(t, err)
	assert.Equal(t, a, b)
	assert.Regexp(t, `^sha256:[0-9a-f]{64}$`, a)
}

// Moving a byte from a name to a body must change the digest: the fields
// are length-prefixed.
func TestWriteFieldFramesFields(t *testing.T) {
	h1, h2 := sha256.New(), sha256.New()
	writeField(h1, []byte("ab"))
	writeField(h1, []byte("c"))
	writeField(h2, []byte("a"))
	writeField(h2, []byte("bc"))
	assert.NotEqual(t, h1.Sum(nil), h2.Sum(nil))
}
