package imagebuild

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/guestcatalog/guestcatalog/catalog"
)

// BenchmarkPlanKey measures normalizing and hashing a recipe.
func BenchmarkPlanKey(b *testing.B) {
	for b.Loop() {
		if _, err := NewPlan(baseRecipe, []string{"podman", "buildah"}, catalog.ArchX8664); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCacheHit measures Build when the image is in the cache: lock,
// read meta.json, check the files.
func BenchmarkCacheHit(b *testing.B) {
	cache := b.TempDir()
	p, err := NewPlan(unitRecipe, nil, catalog.HostArch())
	if err != nil {
		b.Fatal(err)
	}
	writeEntryB(b, cache, p)
	for b.Loop() {
		a, err := Build(context.Background(), unitRecipe, nil, WithCacheDir(cache))
		if err != nil || a.Status != StatusFromCache {
			b.Fatal(a, err)
		}
	}
}

// BenchmarkBuildDebianContainerd builds the shipped debian-13-containerd
// image (trixie, containerd and runc baked) into an empty cache, then
// builds it again (a cache hit), and reports both times, the phases and
// the sizes. Heavy (about a minute on an idle 2-core machine, several under
// load; needs root, mmdebstrap and Debian's archive): it runs only with
// GUESTCATALOG_BENCH_BUILD=1.
func BenchmarkBuildDebianContainerd(b *testing.B) {
	if os.Getenv("GUESTCATALOG_BENCH_BUILD") != "1" {
		b.Skip("set GUESTCATALOG_BENCH_BUILD=1 to build an image with mmdebstrap")
	}
	requireBuilder(b)
	c, err := catalog.Load(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	t, err := c.Resolve("debian-13-containerd")
	if err != nil {
		b.Fatal(err)
	}
	var recipe *catalog.BuildRecipe
	for _, im := range t.ImagesFor(catalog.HostArch()) {
		if im.Build != nil {
			recipe = im.Build
			break
		}
	}
	if recipe == nil {
		b.Skipf("debian-13-containerd has no build recipe for %s", catalog.HostArch())
	}
	var extra []string
	for _, s := range t.StepsFor(catalog.HostArch()) {
		if s.Mode == catalog.ModePackages {
			extra = append(extra, s.Packages...)
		}
	}
	for b.Loop() {
		cache := b.TempDir()
		start := time.Now()
		a, err := Build(context.Background(), *recipe, extra, WithCacheDir(cache))
		if err != nil {
			b.Fatal(err)
		}
		cold := time.Since(start)
		start = time.Now()
		if _, err := Build(context.Background(), *recipe, extra, WithCacheDir(cache)); err != nil {
			b.Fatal(err)
		}
		cached := time.Since(start)
		b.ReportMetric(cold.Seconds(), "s-cold")
		b.ReportMetric(cached.Seconds(), "s-cached")
		for _, ph := range a.Meta.Phases {
			if ph.Name != "total" {
				b.ReportMetric(ph.Seconds, "s-"+ph.Name)
			}
		}
		b.ReportMetric(float64(a.Meta.Sizes.Disk)/(1<<20), "MiB-qcow2")
		b.ReportMetric(float64(a.Meta.Sizes.Rootfs)/(1<<20), "MiB-rootfs")
		b.Logf("debian-13-containerd: cold %s (%v), cached %s; qcow2 %s, virtual %s, %d packages, kernel %s",
			cold.Round(100*time.Millisecond), a.Meta.Phases, cached, HumanBytes(a.Meta.Sizes.Disk),
			HumanBytes(a.VirtualSize), len(a.Meta.Installed), a.Meta.Kernel)
	}
}
