package qemu

import (
	"context"
	"github.com/guestcatalog/guestcatalog/catalog"
	"regexp"
	"testing"
	"time"

	"github.com/guestcatalog/guestcatalog/framework/console"
	"github.com/guestcatalog/guestcatalog/framework/qemu/qemutest"
)

// BenchmarkTCGBoot boots the test kernel and a busybox userspace under
// TCG with several CPU models and reports the time from QEMU's start to
// the first kernel line, to userspace (/init) and to a small userspace
// workload's end. It is how -cpu max was chosen over qemu64 and a named
// model; compare figures from one run only (the host is shared).
func BenchmarkTCGBoot(b *testing.B) {
	qemutest.RequireTools(b, Binary(catalog.HostArch()))
	k := qemutest.Kernel(b)
	initrd := qemutest.Initramfs(b, qemutest.PreludeMounts+
		"echo USERSPACE\ni=0; while [ $i -lt 20000 ]; do i=$((i+1)); done\n"+
		"dd if=/dev/zero bs=1M count=32 2>/dev/null | sha256sum >/dev/null\necho WORKLOAD-DONE\npoweroff -f\n", nil)
	models := []string{"max", "qemu64"}
	if catalog.HostArch() == ArchAarch64 {
		models = []string{"max,pauth-impdef=on", "max", "cortex-a72"}
	}
	done := console.Pattern{Name: "done", Kind: console.Progress, Re: regexp.MustCompile(`^WORKLOAD-DONE`)}
	for _, cpu := range models {
		b.Run(cpu, func(b *testing.B) {
			var kernel, user, work time.Duration
			for n := 0; n < b.N; n++ {
				root := b.TempDir()
				spec := Spec{Name: "bench", Accel: AccelTCG, CPU: cpu, CPUs: 2, MemoryBytes: 512 << 20,
					Kernel: k.Kernel, Initrd: initrd, Append: "console=ttyS0 panic=-1", NoNetwork: true}
				t0 := time.Now()
				inst, err := Start(context.Background(), spec, WithRunRoot(root))
				if err != nil {
					b.Fatal(err)
				}
				seen := map[string]bool{}
				for m := range console.WatchWith(b.Context(), inst.SerialLog(), []console.FollowOption{console.WithStop(inst.Exited())},
					console.KernelStarted(), console.Userspace(), done) {
					if seen[m.Pattern.Name] {
						continue
					}
					seen[m.Pattern.Name] = true
					switch m.Pattern.Name {
					case console.KernelStarted().Name:
						kernel += time.Since(t0)
					case console.Userspace().Name:
						user += time.Since(t0)
					case done.Name:
						work += time.Since(t0)
					}
				}
				inst.Shutdown(context.Background(), 0)
			}
			b.ReportMetric(float64(kernel.Milliseconds())/float64(b.N), "ms-to-kernel")
			b.ReportMetric(float64(user.Milliseconds())/float64(b.N), "ms-to-userspace")
			b.ReportMetric(float64(work.Milliseconds())/float64(b.N), "ms-to-workload-done")
		})
	}
}
