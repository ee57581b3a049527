package instance

import (
	"testing"
)

// BenchmarkRunRm is `catalog run --rm debian-containerd -- true` without
// the CLI, warm (a saved guest in the cache): s-to-command is the time
// from the call until the command was sent to the guest, s-to-exit until
// everything was removed (what the CLI waits for before exiting).
func BenchmarkRunRm(b *testing.B) {
	f := savedGuest(b)
	root := shortRunRoot(b)
	var cmd, done float64
	for b.Loop() {
		var tm RunTimings
		code, err := Run(b.Context(), RunInput{Guest: f.guest, Args: []string{"true"}, RunRoot: root,
			Intervals: f.ivs, Timings: &tm})
		if err != nil || code != 0 {
			b.Fatalf("run: code %d, %v", code, err)
		}
		for _, p := range tm.Phases {
			b.Logf("%-8s at %6.2fs took %6.2fs %s", p.Name, p.Start.Seconds(), p.Duration.Seconds(), p.Detail)
		}
		b.Logf("command at %.2fs, done %.2fs, removed %.2fs", tm.Command.Seconds(), tm.Done.Seconds(), tm.Removed.Seconds())
		cmd += tm.Command.Seconds()
		done += tm.Removed.Seconds()
	}
	b.ReportMetric(cmd/float64(b.N), "s-to-command")
	b.ReportMetric(done/float64(b.N), "s-to-exit")
}
