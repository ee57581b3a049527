package apptainer_test

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/guestcatalog/guestcatalog/suites/specs"
)

// TestApptainer boots every selected template with the apptainer engine and
// runs the base specs and its engine's specs. Guests boot under QEMU: not
// part of -short.
func TestApptainer(t *testing.T) {
	specs.SkipIfShort(t)
	RegisterFailHandler(Fail)
	RunSpecs(t, "apptainer")
}

var _ = specs.ForEngine(specs.RunFromEnv(os.Environ()), "apptainer")
