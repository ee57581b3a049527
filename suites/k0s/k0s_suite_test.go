package k0s_test

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/guestcatalog/guestcatalog/suites/specs"
)

// TestK0s boots every selected template with the k0s engine and
// runs the base specs and its engine's specs. Guests boot under QEMU: not
// part of -short.
func TestK0s(t *testing.T) {
	specs.SkipIfShort(t)
	RegisterFailHandler(Fail)
	RunSpecs(t, "k0s")
}

var _ = specs.ForEngine(specs.RunFromEnv(os.Environ()), "k0s")
