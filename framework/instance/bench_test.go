package instance

import (
	"os"
	"strings"
	"testing"
	"time"
)

// BenchmarkRunRm is `catalog run --rm debian-containerd -- true` without
// the CLI, warm (a saved guest in the cache): s-to-command is the time
// from the call until the command was sent to the guest, s-to-exit until
// everything was removed (what the CLI waits for before exiting). The
// other metrics split s-to-command: s-setup (config, keys, logs dir),
// then the machine's phases (s-prepare: overlay and inspections,
// s-launch: QEMU up and QMP, s-load: device state loaded and the guest
// running, s-ssh: connected, s-resume: clock set), and s-teardown
// (command end to everything removed). The load average is logged.
func BenchmarkRunRm(b *testing.B) {
	f := savedGuest(b)
	root := shortRunRoot(b)
	sums := map[string]float64{}
	var order []string
	add := func(k string, d time.Duration) {
		if _, ok := sums[k]; !ok {
			order = append(order, k)
		}
		sums[k] += d.Seconds()
	}
	for b.Loop() {
		var tm RunTimings
		code, err := Run(b.Context(), RunInput{Guest: f.guest, Args: []string{"true"}, RunRoot: root,
			Intervals: f.ivs, Timings: &tm})
		if err != nil || code != 0 {
			b.Fatalf("run: code %d, %v", code, err)
		}
		add("s-to-command", tm.Command)
		add("s-to-exit", tm.Removed)
		add("s-setup", tm.Started)
		for _, p := range tm.Phases {
			add("s-"+p.Name, p.Duration)
			b.Logf("%-8s at %6.3fs took %6.3fs  %s", p.Name, (tm.Started + p.Start).Seconds(), p.Duration.Seconds(), p.Detail)
		}
		add("s-teardown", tm.Removed-tm.Done)
		b.Logf("command sent at %.3fs, ended %.3fs, all removed %.3fs", tm.Command.Seconds(), tm.Done.Seconds(), tm.Removed.Seconds())
	}
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("load average: %s", strings.TrimSpace(string(la)))
	}
	for _, k := range order {
		b.ReportMetric(sums[k]/float64(b.N), k)
	}
}
