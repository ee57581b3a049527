package podman_test

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/guestcatalog/guestcatalog/suites/specs"
)

// TestPodman boots every selected template with the podman engine and
// runs the base specs and its engine's specs. Guests boot under QEMU: not
// part of -short.
func TestPodman(t *testing.T) {
	specs.SkipIfShort(t)
	RegisterFailHandler(Fail)
	RunSpecs(t, "podman")
}

var _ = specs.ForEngine(specs.RunFromEnv(os.Environ()), "podman")
