package specs

import (
	"context"
	"fmt"
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"

	"github.com/guestcatalog/guestcatalog/framework"
	"github.com/guestcatalog/guestcatalog/framework/config"
)

// EngineSpec wires the Go specs of one engine. An engine without Go specs
// (a user's own) is checked by the base specs and its template's declared
// checks alone.
func EngineSpec(run *framework.Run, engine string, guest func() *framework.Guest) {
	switch engine {
	case "":
		// A distro alone: the base specs are the whole check.
	case "containerd":
		ContainerdSpec(run, guest)
	case "docker":
		DockerSpec(run, guest)
	case "podman":
		PodmanSpec(run, guest)
	case "apptainer":
		ApptainerSpec(run, guest)
	default:
		if _, ok := kubeFlavorOf(engine); ok {
			KubernetesSpec(run, engine, guest)
		}
	}
}

// Template registers one template's specs: an Ordered container that boots
// the guest once (BeforeAll), runs the base specs, its engine's specs and
// its declared checks on it, and tears it down after the last one. Labels:
// template:, engine:, distro:, arch:, tier:.
func Template(run *framework.Run, name string) bool {
	t, err := run.Resolve(name)
	if err != nil {
		// The spec tree is being built: no node to fail in.
		panic(err.Error())
	}
	// ContinueOnFailure: one failing check does not hide the others; they
	// share the guest, not their outcome.
	return Describe(t.Name, Ordered, ContinueOnFailure, Label(run.Labels(t)...), func() {
		var g *framework.Guest
		iso := NewIsolationRun(run, t)
		BeforeAll(func(ctx SpecContext) {
			iso.Prepare() // canaries before the guest exists
			g = run.Boot(ctx, t.Name)
			iso.Booted(g)
		}, NodeTimeout(run.BootTimeout(t)))
		BeforeEach(func() { recordEngineVersion(g) })
		ReportBeforeEach(func(r SpecReport) { run.SpecStarting(t.Name, r) })
		ReportAfterEach(func(r SpecReport) { run.RecordSpec(t.Name, r) })
		get := func() *framework.Guest { return g }
		BaseSpec(run, get)
		EngineSpec(run, framework.EngineOf(t), get)
		ChecksSpec(run, t, get)
		IsolationSpec(get, iso)
	})
}

// Templates registers every template in names.
func Templates(run *framework.Run, names []string) bool {
	for _, n := range names {
		Template(run, n)
	}
	return true
}

// ForEngine registers the selected templates of one engine ("" for the
// distros alone, framework.AnyOtherEngine for engines without a suite of
// their own): the ones the run's config names, or all of its catalog's.
func ForEngine(run *framework.Run, engine string) bool {
	names, err := run.Selected(engine)
	if err != nil {
		panic(err.Error())
	}
	return Templates(run, names)
}

// RunFromEnv builds a suite's run from the environment (environ is
// os.Environ() in the suite's test file): GUESTCATALOG_TEMPLATES,
// GUESTCATALOG_CATALOG, GUESTCATALOG_OFFLINE, ... (framework/config). A bad
// value stops the suite before anything is built or booted.
func RunFromEnv(environ []string) *framework.Run {
	cfg, err := config.FromEnv(environ)
	if err == nil {
		var run *framework.Run
		if run, err = framework.NewRun(context.Background(), cfg, framework.WithProgress(GinkgoWriter)); err == nil {
			return run
		}
	}
	fmt.Fprintln(os.Stderr, "guestcatalog:", err)
	panic(err.Error())
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
