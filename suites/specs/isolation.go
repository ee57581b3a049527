package specs

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework"
	"github.com/guestcatalog/guestcatalog/framework/isolation"
	"github.com/guestcatalog/guestcatalog/framework/machine"
	"github.com/guestcatalog/guestcatalog/framework/report"
)

// LabelIsolation selects the isolation suite (`catalog verify --suite
// isolation`, or -ginkgo.label-filter=suite:isolation).
const LabelIsolation = "suite:isolation"

// LabelIsolationStrict marks the isolation specs of a template that
// declares isolation: strict: they run in every verify of it, so a plain
// verify leaves out only the isolation specs of the other templates
// (`!suite:isolation || isolation:strict`).
const LabelIsolationStrict = "isolation:strict"

// isolationLabels are the labels of template t's isolation specs.
func isolationLabels(t *catalog.Template) Labels {
	if t.Isolation == catalog.IsolationStrict {
		return Label(LabelIsolation, LabelIsolationStrict)
	}
	return Label(LabelIsolation)
}

// Egress targets of the isolation checks: an allowlisted name of the
// shipped sandbox (Debian's archive, reachable from these hosts) and a
// name no allowlist has.
const (
	isolationAllowedHost = "deb.debian.org"
	isolationDeniedHost  = "example.org"
)

// IsolationRun is one template's isolation run: the host canaries made
// before the guest boots, what the guest leaves behind, and the profile.
type IsolationRun struct {
	run      *framework.Run
	t        *catalog.Template
	canaries *isolation.Canaries
	left     isolation.Leftovers
	profile  *isolation.Profile
}

// isolationRequested: a template that declares isolation: strict is always
// held to it; any other gets a profile when the suite is selected.
func isolationRequested(t *catalog.Template) bool {
	return t.Isolation == catalog.IsolationStrict || strings.Contains(GinkgoLabelFilter(), LabelIsolation)
}

// NewIsolationRun is the isolation run of template t (made when the specs
// are registered; Prepare and Booted fill it in).
func NewIsolationRun(run *framework.Run, t *catalog.Template) *IsolationRun {
	return &IsolationRun{run: run, t: t}
}

// Prepare runs in the template's BeforeAll before the guest boots: it
// makes the canaries (the token in a host file outside every
// mount, a listener on the host's 127.0.0.1, the token in this test
// process's environment) and registers the teardown check, which runs
// after the guest's own cleanup (cleanups run last-registered first).
func (r *IsolationRun) Prepare() {
	GinkgoHelper()
	t := r.t
	if !isolationRequested(t) {
		return
	}
	mounts, err := machine.ResolveMounts(t, "")
	Expect(err).NotTo(HaveOccurred(), "isolation: resolving the mounts of %s", t.Name)
	var dirs []string
	for _, m := range mounts {
		dirs = append(dirs, m.HostPath)
	}
	c, err := isolation.NewCanaries(dirs)
	Expect(err).NotTo(HaveOccurred(), "isolation: canaries for %s", t.Name)
	r.canaries = c
	// A test process may set its own environment: the token is there while
	// QEMU runs, and must not reach the guest.
	Expect(os.Setenv(c.EnvName, c.Token)).To(Succeed())
	DeferCleanup(func() {
		_ = os.Unsetenv(c.EnvName)
		_ = c.Close()
		if r.left.QEMUPid == 0 {
			return // the guest never booted
		}
		res := isolation.CheckTeardown(r.left)
		r.run.RecordIsolation(t.Name, reportResult(res))
		fmt.Fprintf(GinkgoWriter, "isolation %s: %s %s\n", res.Property, res.Status, res.Detail)
		if res.Status == isolation.NotHeld && t.Isolation == catalog.IsolationStrict {
			Fail(fmt.Sprintf("template %s (isolation: strict), %s: %s", t.Name, res.Property, res.Detail))
		}
	})
}

// Booted records, right after the guest booted, what the teardown check
// must find gone after close.
func (r *IsolationRun) Booted(g *framework.Guest) {
	if r.canaries != nil && g != nil && g.Machine() != nil {
		r.left = isolation.LeftoversOf(g.Machine())
	}
}

// IsolationSpec checks the template's isolation from inside its guest:
// one spec runs every check (isolation.Run) and records the profile in the
// report; one spec per property then holds a strict template to it, and
// reports a property that does not hold in any other template as skipped
// with the evidence, without failing it.
func IsolationSpec(guest func() *framework.Guest, r *IsolationRun) {
	It("isolation: profile from inside the guest", isolationLabels(r.t), func(ctx SpecContext) {
		if !isolationRequested(r.t) {
			Skip("isolation profile not requested (select it with --suite isolation or the label " + LabelIsolation + ")")
		}
		g := guest()
		Expect(r.canaries).NotTo(BeNil())
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		targets := isolation.HostTargets(tctx, isolationAllowedHost, isolationDeniedHost)
		cancel()
		in := isolation.FromMachine(g.Machine(), r.canaries, targets)
		// The snapshot-uniqueness check resumes the template's saved guest
		// (verify just saved or resumed it) twice into disks of their own.
		cfg := r.run.Config()
		in.Resume, in.NoResumeReason = isolation.SavedResumer(ctx, cfg.CacheDir, cfg.Arch, r.t, r.run.Intervals())
		start := time.Now()
		p, err := isolation.Run(ctx, in)
		Expect(err).NotTo(HaveOccurred())
		r.profile = &p
		var results []report.IsolationResult
		for _, res := range p.Results {
			results = append(results, reportResult(res))
		}
		r.run.RecordIsolation(r.t.Name, results...)
		fmt.Fprintf(GinkgoWriter, "%s(checks took %.1fs)\n", p, time.Since(start).Seconds())
		AddReportEntry("isolation-profile", p.String())
	}, NodeTimeout(30*time.Minute))

	for _, prop := range isolation.Properties() {
		It("isolation: "+prop, isolationLabels(r.t), func() {
			if r.profile == nil {
				Skip("no isolation profile (not requested, or the profile spec failed)")
			}
			res := r.profile.Get(prop)
			switch {
			case res.Status == isolation.Skipped:
				Skip(res.Detail)
			case res.Status == isolation.NotHeld && r.profile.Strict:
				Fail(fmt.Sprintf("template %s (isolation: strict): %s does not hold: %s (artifacts: %s)", r.t.Name, prop, res.Detail, guest().Artifacts()))
			case res.Status == isolation.NotHeld:
				Skip("NOT HELD (reported only; the template does not declare isolation: strict): " + res.Detail)
			}
			Expect(res.Status).To(Equal(isolation.Held), "%s: %s", prop, res.Detail)
		})
	}
}

func reportResult(r isolation.Result) report.IsolationResult {
	return report.IsolationResult{Property: r.Property, Status: string(r.Status), Detail: r.Detail, Seconds: r.Seconds}
}
