package catalog

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func writeFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o644) }

// catalogFromYAML loads src as a file of its own (without the shipped
// catalog) and fails the test on load errors.
func catalogFromYAML(t *testing.T, src string) *Catalog {
	t.Helper()
	p := filepath.Join(t.TempDir(), "t.yaml")
	require.NoError(t, writeFile(p, src))
	c, err := load(false, []string{p})
	require.NoError(t, err)
	return c
}
