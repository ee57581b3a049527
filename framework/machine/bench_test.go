package machine

import (
	"context"
	"testing"
	"time"
)

// BenchmarkStartDebianTCG boots the locally built Debian 13 image to ready
// (all phases) under TCG and reports each phase's duration and the total
// (seconds), then closes it and reports the shutdown time.
func BenchmarkStartDebianTCG(b *testing.B) {
	img := debianImage(b)
	tmpl := debianTemplate(b)
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		start := time.Now()
		m, err := Start(ctx, Config{Template: tmpl, Image: img, Accel: AccelTCG, ArtifactsDir: b.TempDir()})
		if err != nil {
			cancel()
			b.Fatal(err)
		}
		ready := time.Since(start)
		logPhases(b, m.Phases())
		for _, p := range m.Phases() {
			b.ReportMetric(p.Duration.Seconds(), p.Name+"-s")
		}
		b.ReportMetric(ready.Seconds(), "ready-s")
		closeStart := time.Now()
		if err := m.Close(ctx); err != nil {
			b.Error(err)
		}
		b.ReportMetric(time.Since(closeStart).Seconds(), "close-s")
		cancel()
	}
}
