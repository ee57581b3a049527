package k8s_test

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/guestcatalog/guestcatalog/suites/specs"
)

// TestK8s boots every selected template with the k8s engine and
// runs the base specs and its engine's specs. Guests boot under QEMU: not
// part of -short.
func TestK8s(t *testing.T) {
	specs.SkipIfShort(t)
	RegisterFailHandler(Fail)
	RunSpecs(t, "k8s")
}

var _ = specs.ForEngine(specs.RunFromEnv(os.Environ()), "k8s")
