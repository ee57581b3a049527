package specs

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"

	"github.com/guestcatalog/guestcatalog/framework"
)

// EngineSpec wires the specs of one engine.
func EngineSpec(engine string, guest func() *framework.Guest) {
	switch engine {
	case "":
		// A distro alone: the base specs are the whole check.
	case "containerd":
		ContainerdSpec(guest)
	case "docker":
		DockerSpec(guest)
	case "podman":
		PodmanSpec(guest)
	case "apptainer":
		ApptainerSpec(guest)
	default:
		KubernetesSpec(engine, guest)
	}
}

// Template registers one template's specs: an Ordered container that boots
// the guest once (BeforeAll), runs the base specs and its engine's specs on
// it, and tears it down after the last one. Labels: template:, engine:,
// distro:, arch:, tier:.
func Template(name string) bool {
	t := framework.MustResolve(name)
	// ContinueOnFailure: one failing check does not hide the others; they
	// share the guest, not their outcome.
	return Describe(t.Name, Ordered, ContinueOnFailure, Label(framework.TemplateLabels(t)...), func() {
		var g *framework.Guest
		iso := NewIsolationRun(t)
		BeforeAll(func(ctx SpecContext) {
			iso.Prepare() // canaries before the guest exists
			g = framework.Boot(ctx, t.Name)
			iso.Booted(g)
		}, NodeTimeout(framework.BootTimeout(t)))
		BeforeEach(func() { recordEngineVersion(g) })
		ReportAfterEach(func(r SpecReport) { framework.RecordSpec(t.Name, r) })
		get := func() *framework.Guest { return g }
		BaseSpec(get)
		engine := ""
		if t.Engine != nil {
			engine = t.Engine.Name
		}
		EngineSpec(engine, get)
		IsolationSpec(get, iso)
	})
}

// Templates registers every template in names.
func Templates(names []string) bool {
	for _, n := range names {
		Template(n)
	}
	return true
}

// ForEngine registers the selected templates of one engine ("" for the
// distros alone): the ones named in GUESTCATALOG_TEMPLATES, or all of the
// catalog's. It is what suites/<engine> calls.
func ForEngine(engine string) bool {
	return Templates(framework.Selected(engine))
}

// SkipIfShort skips a suite under `go test -short`: suites boot guests.
func SkipIfShort(t interface {
	Skip(args ...any)
	Helper()
}) {
	t.Helper()
	if testing.Short() {
		t.Skip("guest suites boot QEMU guests; not part of -short")
	}
}
