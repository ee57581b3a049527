package usernetes_test

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/guestcatalog/guestcatalog/suites/specs"
)

// TestUsernetes boots every selected template with the usernetes engine and
// runs the base specs and its engine's specs. Guests boot under QEMU: not
// part of -short.
func TestUsernetes(t *testing.T) {
	specs.SkipIfShort(t)
	RegisterFailHandler(Fail)
	RunSpecs(t, "usernetes")
}

var _ = specs.ForEngine(specs.RunFromEnv(os.Environ()), "usernetes")
