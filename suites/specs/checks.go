package specs

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework"
)

// ChecksSpec registers the template's declared checks (checks:), one spec
// each, named by the check, after the engine's specs; they carry the
// template's labels (the enclosing container's). A check with eventually:
// is run again, poll apart, until it holds within its bound, scaled for
// the accelerator the guest runs on.
func ChecksSpec(run *framework.Run, t *catalog.Template, guest func() *framework.Guest) {
	for _, c := range t.ChecksFor(run.Config().Arch) {
		timeout, err := run.CheckTimeout(c)
		if err != nil {
			panic(err.Error()) // validated by catalog; a bad name is a bug
		}
		It(c.Name, func(ctx SpecContext) {
			g := guest()
			if c.Eventually == "" {
				if err := g.RunCheck(ctx, c); err != nil {
					Fail(err.Error())
				}
				return
			}
			bound, err := g.Bound(c.Eventually)
			Expect(err).NotTo(HaveOccurred())
			Eventually(ctx, func(ctx SpecContext) error {
				return g.RunCheck(ctx, c)
			}).WithTimeout(bound).WithPolling(g.Interval("default/poll")).Should(Succeed(),
				"check %q did not hold within %s (eventually: %s)", c.Name, bound, c.Eventually)
		}, NodeTimeout(timeout))
	}
}
