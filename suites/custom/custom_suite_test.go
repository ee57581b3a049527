package custom_test

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/guestcatalog/guestcatalog/framework"
	"github.com/guestcatalog/guestcatalog/suites/specs"
)

// TestCustom boots every selected template whose engine has no suite of its
// own and runs the base specs and its declared checks. Guests boot under
// QEMU: not part of -short.
func TestCustom(t *testing.T) {
	specs.SkipIfShort(t)
	RegisterFailHandler(Fail)
	RunSpecs(t, "custom")
}

var _ = specs.ForEngine(specs.RunFromEnv(os.Environ()), framework.AnyOtherEngine)
