package containerd_test

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/guestcatalog/guestcatalog/suites/specs"
)

// TestContainerd boots every selected template with the containerd engine and
// runs the base specs and its engine's specs. Guests boot under QEMU: not
// part of -short.
func TestContainerd(t *testing.T) {
	specs.SkipIfShort(t)
	RegisterFailHandler(Fail)
	RunSpecs(t, "containerd")
}

var _ = specs.ForEngine(specs.RunFromEnv(os.Environ()), "containerd")
