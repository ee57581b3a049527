package machine

import (
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/guestcatalog/guestcatalog/cloudinit"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
	"github.com/guestcatalog/guestcatalog/framework/sshx"
)

// The two benchmarks below boot the same locally built Debian 13 image under
// TCG; run them in one `go test -bench` invocation so they are measured side
// by side (timings on a shared host are only comparable that way):
//
//	go test -run '^$' -bench 'Debian' -benchtime 2x ./framework/machine

// BenchmarkStartDebianTCG: machine.Start to ready (every phase, cloud-init
// finished, probes passed). Reports each phase's duration, "ssh-at-s"
// (when SSH answered, from Start's call) and "ready-s".
func BenchmarkStartDebianTCG(b *testing.B) {
	img := debianImage(b)
	tmpl := debianTemplate(b)
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		start := time.Now()
		m, err := Start(ctx, Config{Template: tmpl, Image: img, Accel: qemu.AccelTCG, ArtifactsDir: b.TempDir()})
		if err != nil {
			cancel()
			b.Fatal(err)
		}
		ready := time.Since(start)
		logPhases(b, m.Phases())
		for _, p := range m.Phases() {
			b.ReportMetric(p.Duration.Seconds(), p.Name+"-s")
			if p.Name == PhaseSSH {
				b.ReportMetric((p.Start + p.Duration).Seconds(), "ssh-at-s")
			}
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

// BenchmarkHandWrittenLoopDebianTCG is the reference the framework is
// measured against: what one writes by hand — QEMU started directly, the
// same seed, then `ssh ... true` retried every second until it works.
// Reports "ssh-at-s" from QEMU's start.
func BenchmarkHandWrittenLoopDebianTCG(b *testing.B) {
	img := debianImage(b)
	tmpl := debianTemplate(b)
	requireTool(b, "ssh")
	for i := 0; i < b.N; i++ {
		dir, err := os.MkdirTemp("", "gc-hand-")
		if err != nil {
			b.Fatal(err)
		}
		kp, err := sshx.NewKeyPair(dir, "hand")
		if err != nil {
			b.Fatal(err)
		}
		seed, err := cloudinit.Render(tmpl, cloudinit.Input{Arch: "x86_64", Image: *img.Entry, AuthorizedKeys: []string{kp.AuthorizedKey}})
		if err != nil {
			b.Fatal(err)
		}
		if err := cloudinit.WriteSeedISO(filepath.Join(dir, "seed.iso"), seed); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		if err := qemu.CreateOverlay(ctx, img.Disk, "qcow2", filepath.Join(dir, "overlay.qcow2"), 0); err != nil {
			b.Fatal(err)
		}
		port, _ := qemu.FreePort()
		q := osexec.CommandContext(ctx, "qemu-system-x86_64",
			"-accel", "tcg,thread=multi", "-smp", "2", "-m", "2048", "-nographic", "-nodefaults", "-no-reboot",
			"-kernel", img.Kernel, "-initrd", img.Initrd, "-append", img.Append,
			"-drive", "file="+filepath.Join(dir, "overlay.qcow2")+",if=virtio,format=qcow2",
			"-drive", "file="+filepath.Join(dir, "seed.iso")+",if=virtio,format=raw,readonly=on",
			"-netdev", fmt.Sprintf("user,id=n0,hostfwd=tcp:127.0.0.1:%d-:22", port), "-device", "virtio-net-pci,netdev=n0",
			"-serial", "file:"+filepath.Join(dir, "console.log"))
		start := time.Now()
		if err := q.Start(); err != nil {
			b.Fatal(err)
		}
		var at time.Duration
		for ctx.Err() == nil {
			ssh := osexec.CommandContext(ctx, "ssh", "-i", kp.PrivateKeyPath, "-p", fmt.Sprint(port),
				"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5",
				"-o", "BatchMode=yes", "-o", "LogLevel=ERROR", tmpl.User.Name+"@127.0.0.1", "true")
			if err := ssh.Run(); err == nil {
				at = time.Since(start)
				break
			}
			time.Sleep(time.Second)
		}
		b.Logf("hand-written loop: ssh answered %.1fs after qemu started", at.Seconds())
		b.ReportMetric(at.Seconds(), "ssh-at-s")
		_ = q.Process.Kill()
		_ = q.Wait()
		cancel()
		os.RemoveAll(dir)
	}
}
