package rke2_test

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/guestcatalog/guestcatalog/suites/specs"
)

// TestRke2 boots every selected template with the rke2 engine and
// runs the base specs and its engine's specs. Guests boot under QEMU: not
// part of -short.
func TestRke2(t *testing.T) {
	specs.SkipIfShort(t)
	RegisterFailHandler(Fail)
	RunSpecs(t, "rke2")
}

var _ = specs.ForEngine(specs.RunFromEnv(os.Environ()), "rke2")
