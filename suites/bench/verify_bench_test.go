package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	// Ginkgo's flags are defined so that `go test ./suites/... -ginkgo.v`
	// (make test-suites) also runs this package.
	_ "github.com/onsi/ginkgo/v2"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/report"
)

// catalogBin builds the CLI once per benchmark run.
func catalogBin(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "catalog")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/guestcatalog/guestcatalog/cmd/catalog").CombinedOutput()
	if err != nil {
		b.Fatalf("building catalog: %v\n%s", err, out)
	}
	return bin
}

// verify runs `catalog verify --offline` and returns the reports and the
// wall time.
func verify(b *testing.B, bin string, extra []string, templates ...string) ([]*report.Template, time.Duration) {
	b.Helper()
	dir := b.TempDir()
	args := append([]string{"verify", "--offline", "--report-dir", dir, "--artifacts", filepath.Join(dir, "artifacts")}, extra...)
	args = append(args, templates...)
	start := time.Now()
	out, err := exec.Command(bin, args...).CombinedOutput()
	took := time.Since(start)
	if err != nil {
		b.Fatalf("catalog %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var reps []*report.Template
	c, err := catalog.Load(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	for _, alias := range templates {
		t, err := c.Resolve(alias)
		if err != nil {
			b.Fatal(err)
		}
		name := t.Name
		r, err := report.ReadFile(filepath.Join(dir, name, "report.json"))
		if err != nil {
			b.Fatalf("reading report of %s: %v\n%s", name, err, out)
		}
		reps = append(reps, r)
	}
	return reps, took
}

func readySeconds(r *report.Template) float64 {
	var s float64
	for _, p := range r.Phases {
		s += p.Seconds
	}
	return s
}

func skipUnlessGuests(b *testing.B) {
	if testing.Short() {
		b.Skip("boots guests")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		b.Skip("qemu-system-x86_64 not installed")
	}
}

// BenchmarkVerifyWarm: the second verify of debian-containerd starts from
// the provisioned disk. Targets: ready ≤ 10 s, whole verdict ≤ 30 s (TCG).
func BenchmarkVerifyWarm(b *testing.B) {
	skipUnlessGuests(b)
	bin := catalogBin(b)
	verify(b, bin, nil, "debian-containerd") // make sure a provisioned disk exists
	b.ResetTimer()
	var ready, total, perSpec float64
	for i := 0; i < b.N; i++ {
		reps, took := verify(b, bin, nil, "debian-containerd")
		r := reps[0]
		if r.Provisioned != "reused" {
			b.Fatalf("second verify did not reuse the provisioned disk: %q", r.Provisioned)
		}
		ready += readySeconds(r)
		total += took.Seconds()
		var specs float64
		for _, c := range r.Checks {
			specs += c.Seconds
		}
		perSpec += specs / float64(len(r.Checks))
		b.Logf("warm verify: ready %.1fs (%v), verdict %.1fs, %d checks", readySeconds(r), r.Phases, took.Seconds(), len(r.Checks))
	}
	n := float64(b.N)
	b.ReportMetric(ready/n, "ready-s")
	b.ReportMetric(total/n, "verdict-s")
	b.ReportMetric(perSpec/n, "s/spec")
}

// BenchmarkVerifyColdOffline: the four offline templates from scratch
// (images cached or not, no provisioned disks). Target ≤ 15 min on 2 cores.
// Set GUESTCATALOG_BENCH_COLD=1: it takes many minutes.
func BenchmarkVerifyColdOffline(b *testing.B) {
	skipUnlessGuests(b)
	if os.Getenv("GUESTCATALOG_BENCH_COLD") != "1" {
		b.Skip("set GUESTCATALOG_BENCH_COLD=1 (many minutes)")
	}
	bin := catalogBin(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		reps, took := verify(b, bin, []string{"--no-reuse"}, "debian-containerd", "debian-docker", "debian-podman", "debian-apptainer")
		for _, r := range reps {
			b.Logf("%s: %s, ready %.1fs, %.0fs", r.Template, r.Result, readySeconds(r), r.Seconds)
		}
		b.ReportMetric(took.Minutes(), "min")
	}
}
