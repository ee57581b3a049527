package base_test

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/guestcatalog/guestcatalog/suites/specs"
)

// TestBase boots every selected template that has no engine (a distro alone) and
// runs the base specs and its engine's specs. Guests boot under QEMU: not
// part of -short.
func TestBase(t *testing.T) {
	specs.SkipIfShort(t)
	RegisterFailHandler(Fail)
	RunSpecs(t, "base")
}

var _ = specs.ForEngine(specs.RunFromEnv(os.Environ()), "")
