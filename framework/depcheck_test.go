package framework

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLayering keeps the layering of design.md: library packages (catalog,
// cloudinit, framework/<part>, ci) never import Ginkgo or Gomega, and
// framework sub-packages never import the top framework package.
func TestLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Deps \" \"}}",
		"github.com/guestcatalog/guestcatalog/catalog/...",
		"github.com/guestcatalog/guestcatalog/cloudinit/...",
		"github.com/guestcatalog/guestcatalog/framework/...",
		"github.com/guestcatalog/guestcatalog/ci/...",
	).CombinedOutput()
	require.NoError(t, err, string(out))
	const top = "github.com/guestcatalog/guestcatalog/framework"
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, deps := fields[0], fields[1:]
		if pkg == top {
			continue
		}
		checked++
		for _, d := range deps {
			if strings.HasPrefix(d, "github.com/onsi/ginkgo") || strings.HasPrefix(d, "github.com/onsi/gomega") {
				t.Errorf("%s imports %s: library packages return errors; only %s and suites/ assert", pkg, d, top)
			}
			if d == top {
				t.Errorf("%s imports %s: sub-packages never import the top package", pkg, top)
			}
		}
	}
	require.Greater(t, checked, 3, "go list found too few packages")
}
