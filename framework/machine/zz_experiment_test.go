package machine

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func TestExperimentCPU(t *testing.T) {
	if os.Getenv("H7_EXPERIMENT") == "" {
		t.Skip()
	}
	img := debianImage(t)
	tmpl := debianTemplate(t)
	variants := strings.Split(os.Getenv("H7_EXPERIMENT"), ";")
	for round := 0; round < 2; round++ {
		for _, v := range variants {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			start := time.Now()
			m, err := Start(ctx, Config{Template: tmpl, Image: img, Accel: AccelTCG, CPU: v})
			if err != nil {
				t.Fatal(err)
			}
			ready := time.Since(start)
			var b strings.Builder
			for _, p := range m.Phases() {
				b.WriteString(p.Name + "=" + p.Duration.Round(100*time.Millisecond).String() + " ")
			}
			la, _ := os.ReadFile("/proc/loadavg")
			t.Logf("cpu %q: ready %.1fs  %s load %s", v, ready.Seconds(), b.String(), la)
			m.Close(ctx)
			cancel()
		}
	}
}
