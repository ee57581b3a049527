package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A name that carries a carriage return and an erase-line sequence must
// not rewrite what the terminal shows: `FAIL <name>` printed raw would read
// `PASS debian-13-docker`. Every line validate prints is checked for raw
// control characters.
func TestValidateNeverPrintsControlCharacters(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "evil.yaml")
	require.NoError(t, os.WriteFile(p, []byte(`apiVersion: guestcatalog.dev/v1alpha1
kind: Fragment
name: "engines/a\r\e[2KPASS debian-13-docker"
base: [engines/b]
---
apiVersion: guestcatalog.dev/v1alpha1
kind: Fragment
name: engines/b
base: ["engines/a\r\e[2KPASS debian-13-docker"]
`), 0o644))
	stdout, stderr, code := runCLI(t, "validate", p)
	assert.Equal(t, 2, code, "an invalid template is invalid input")
	for _, s := range []string{stdout, stderr} {
		assert.NotContains(t, s, "\r")
		assert.NotContains(t, s, "\x1b")
	}
	assert.Contains(t, stdout, `FAIL "engines/a\r\x1b[2KPASS debian-13-docker"`)
	for _, l := range strings.Split(stdout, "\n") {
		assert.False(t, strings.HasPrefix(l, "PASS debian-13-docker"), "a line reads as a forged verdict: %q", l)
	}
}

func TestSanitizeLinesKeepsLineBreaks(t *testing.T) {
	assert.Equal(t, "a\\r\\x1b[2K\nb", sanitizeLines("a\r\x1b[2K\nb"))
}
