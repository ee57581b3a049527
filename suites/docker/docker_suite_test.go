package docker_test

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/guestcatalog/guestcatalog/suites/specs"
)

// TestDocker boots every selected template with the docker engine and
// runs the base specs and its engine's specs. Guests boot under QEMU: not
// part of -short.
func TestDocker(t *testing.T) {
	specs.SkipIfShort(t)
	RegisterFailHandler(Fail)
	RunSpecs(t, "docker")
}

var _ = specs.ForEngine(specs.RunFromEnv(os.Environ()), "docker")
