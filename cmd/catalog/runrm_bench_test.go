package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkCLIRunRm is the figure, through the real binary, warm:
// `catalog run --rm --offline debian-containerd -- echo started`, timed
// from the process's start to the command's first output reaching the
// host (s-to-command) and to the CLI's exit (s-to-exit). It skips when
// the template has no saved guest (`catalog up` or `catalog verify`
// saves one). The load average is logged: the figure depends on it.
func BenchmarkCLIRunRm(b *testing.B) {
	if testing.Short() {
		b.Skip("boots a guest")
	}
	bin := filepath.Join(b.TempDir(), "catalog")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	var toCmd, toExit float64
	for b.Loop() {
		cmd := exec.Command(bin, "run", "--rm", "--offline", "debian-containerd", "--", "echo", "started")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		var first time.Duration
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if first == 0 && strings.Contains(sc.Text(), "started") {
				first = time.Since(start)
			}
		}
		err = cmd.Wait()
		exit := time.Since(start)
		if err != nil {
			if strings.Contains(stderr.String(), "no saved guest") {
				b.Skipf("%s", strings.TrimSpace(stderr.String()))
			}
			b.Fatalf("catalog run: %v\n%s", err, stderr.String())
		}
		if first == 0 {
			b.Fatalf("the command's output never came\n%s", stderr.String())
		}
		b.Logf("command started (first output) at %.3fs, CLI exited at %.3fs", first.Seconds(), exit.Seconds())
		toCmd += first.Seconds()
		toExit += exit.Seconds()
	}
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("load average: %s", strings.TrimSpace(string(la)))
	}
	b.ReportMetric(toCmd/float64(b.N), "s-to-command")
	b.ReportMetric(toExit/float64(b.N), "s-to-exit")
}
