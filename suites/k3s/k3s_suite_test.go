package k3s_test

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/guestcatalog/guestcatalog/suites/specs"
)

// TestK3s boots every selected template with the k3s engine and
// runs the base specs and its engine's specs. Guests boot under QEMU: not
// part of -short.
func TestK3s(t *testing.T) {
	specs.SkipIfShort(t)
	RegisterFailHandler(Fail)
	RunSpecs(t, "k3s")
}

var _ = specs.ForEngine(specs.RunFromEnv(os.Environ()), "k3s")
