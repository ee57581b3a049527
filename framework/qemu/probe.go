package qemu

import (
	"context"
	"errors"
	"fmt"
	"github.com/guestcatalog/guestcatalog/catalog"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guestcatalog/guestcatalog/framework/console"
)

// Probe methods.
const (
	// ProbeKernel boots a Linux kernel with no root file system and
	// panic=-1: the verdict is the kernel reaching its "Kernel panic -
	// not syncing" (it ran through early boot, drivers and the mount of
	// root). This is what tells a hanging nested KVM apart.
	ProbeKernel = "kernel"
	// ProbeFirmware boots SeaBIOS with no disk and reads its debug port
	// (isa-debugcon 0x402) until it gives up looking for a boot device.
	// It proves the accelerator runs firmware, not that Linux will boot.
	ProbeFirmware = "firmware"
)

// ProbeInput configures Probe.
type ProbeInput struct {
	// Accel is kvm or tcg.
	Accel string
	// Arch defaults to the host's.
	Arch string
	// Kernel selects the kernel probe; "" the firmware probe (x86 only).
	Kernel string
	// Timeout for the verdict (default 60s; the kernel probe under KVM
	// uses interval accel/kvm-stall).
	Timeout time.Duration
	// Options for Start (run root, logger, intervals).
	Options []Option
}

// ProbeResult is one probe boot's outcome.
type ProbeResult struct {
	Accel  string `json:"accel"`
	Method string `json:"method"`
	OK     bool   `json:"ok"`
	// Elapsed from starting QEMU to the verdict; KernelAt to the first
	// kernel line (kernel probe).
	Elapsed  time.Duration `json:"elapsed"`
	KernelAt time.Duration `json:"kernelAt,omitempty"`
	// Detail says what was seen, or why the probe failed.
	Detail string `json:"detail"`
}

func firmwareDone() console.Pattern {
	return console.Pattern{Name: "boot-selection", Kind: console.Progress, Re: firmwareDoneRE}
}

var firmwareDoneRE = regexp.MustCompile(`No bootable device|Booting from `)

// Probe runs one short probe boot. The error is for what prevents a
// probe (no QEMU, a bad input, a cancelled ctx); a guest that does not
// make progress is a result with OK false.
func Probe(ctx context.Context, in ProbeInput) (ProbeResult, error) {
	if in.Arch == "" {
		in.Arch = catalog.HostArch()
	}
	res := ProbeResult{Accel: in.Accel, Method: ProbeKernel}
	if in.Kernel == "" {
		res.Method = ProbeFirmware
		if in.Arch != ArchX8664 {
			return res, fmt.Errorf("firmware probe: x86_64 only; give a kernel for %s", in.Arch)
		}
	}
	cfg, err := newConfig(in.Options)
	if err != nil {
		return res, err
	}
	timeout := in.Timeout
	if timeout == 0 {
		timeout = 60 * time.Second
		if in.Accel == AccelKVM && in.Kernel != "" {
			if timeout, err = cfg.intervals.Get("accel/kvm-stall", AccelKVM); err != nil {
				return res, err
			}
		}
	}
	rd, err := NewRunDir(cfg.runRoot, "probe-"+in.Accel)
	if err != nil {
		return res, err
	}
	defer rd.Remove()
	spec := Spec{
		Name: "probe-" + in.Accel, Arch: in.Arch, Accel: in.Accel,
		CPUs: 1, MemoryBytes: 256 << 20, NoNetwork: true, NoReboot: true,
	}
	watch := rd.File(SerialLogName)
	want := console.KernelPanic()
	if in.Kernel != "" {
		spec.Kernel, spec.Append = in.Kernel, SerialConsole(in.Arch)+" panic=-1"
	} else {
		spec.Diskless = true
		spec.Debugcon = rd.File("debugcon.log")
		watch, want = spec.Debugcon, firmwareDone()
	}
	t0 := time.Now()
	inst, err := start(ctx, spec, &startConfig{log: cfg.log, runDir: rd, intervals: cfg.intervals, freePort: FreePort})
	if err != nil {
		res.Elapsed = time.Since(t0)
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		var ee *ExitError
		if !errors.As(err, &ee) {
			return res, err
		}
		res.Detail = "qemu exited at once: " + shortErr(err)
		return res, nil
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		inst.Shutdown(sctx, 0)
	}()

	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	matches := console.WatchWith(wctx, watch, []console.FollowOption{
		console.WithStop(inst.Exited()), console.WithPoll(20 * time.Millisecond),
	}, console.KernelStarted(), want)
	for m := range matches {
		if m.Pattern.Name == console.KernelStarted().Name {
			if res.KernelAt == 0 {
				res.KernelAt = time.Since(t0)
			}
			continue
		}
		res.OK, res.Elapsed = true, time.Since(t0)
		if in.Kernel != "" {
			res.Detail = fmt.Sprintf("kernel booted to its expected panic in %.1fs (first kernel line after %.1fs)", res.Elapsed.Seconds(), res.KernelAt.Seconds())
		} else {
			res.Detail = fmt.Sprintf("SeaBIOS reached boot device selection in %.1fs (%q); firmware only: a Linux guest may still hang", res.Elapsed.Seconds(), m.Line.Text)
		}
		return res, nil
	}
	res.Elapsed = time.Since(t0)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	last := console.LastLine(watch)
	switch {
	case inst.proc.exited() && inst.Err() != nil:
		res.Detail = "qemu exited: " + shortErr(inst.Err())
	case res.KernelAt > 0:
		res.Detail = fmt.Sprintf("kernel started after %.1fs but did not reach its panic in %s (last line: %q)", res.KernelAt.Seconds(), timeout, last)
	case last != "":
		res.Detail = fmt.Sprintf("no progress in %s (last line: %q)", timeout, last)
	default:
		res.Detail = fmt.Sprintf("no output at all in %s", timeout)
	}
	return res, nil
}

// AccelReport is the accelerator verdict of ProbeAccel.
type AccelReport struct {
	// Verdict is the accelerator auto would end on: kvm or tcg ("" if
	// neither works).
	Verdict string        `json:"verdict"`
	Reason  string        `json:"reason"`
	Probes  []ProbeResult `json:"probes"`
	// KVMUnusable is why KVM was not probed ("" if it was).
	KVMUnusable string `json:"kvmUnusable,omitempty"`
}

// ProbeAccel probes KVM (where KVMUsable) and TCG with real boots and
// says which one a guest would run under.
func ProbeAccel(ctx context.Context, in ProbeInput) (AccelReport, error) {
	var rep AccelReport
	kvmOK := false
	if err := KVMUsable(in.Arch); err != nil {
		rep.KVMUnusable = err.Error()
	} else {
		k := in
		k.Accel = AccelKVM
		r, err := Probe(ctx, k)
		if err != nil {
			return rep, fmt.Errorf("kvm probe: %w", err)
		}
		rep.Probes = append(rep.Probes, r)
		kvmOK = r.OK
	}
	t := in
	t.Accel = AccelTCG
	r, err := Probe(ctx, t)
	if err != nil {
		return rep, fmt.Errorf("tcg probe: %w", err)
	}
	rep.Probes = append(rep.Probes, r)
	switch {
	case kvmOK && in.Kernel != "":
		rep.Verdict, rep.Reason = AccelKVM, "a Linux kernel boots under kvm"
	case kvmOK:
		rep.Verdict, rep.Reason = AccelKVM, "firmware runs under kvm (no kernel to probe with: auto still watches the console and falls back to tcg if a guest stalls)"
	case r.OK:
		rep.Verdict = AccelTCG
		if rep.KVMUnusable != "" {
			rep.Reason = "kvm unusable (" + rep.KVMUnusable + "); tcg works"
		} else {
			rep.Reason = "kvm " + rep.Probes[0].Detail + "; tcg works"
		}
	default:
		rep.Reason = "no accelerator boots a guest: " + r.Detail
	}
	return rep, nil
}

// EnvProbeKernel names a kernel for probe boots (also used by tests).
const EnvProbeKernel = "GUESTCATALOG_TEST_KERNEL"

// FindProbeKernel returns a Linux kernel for a probe boot, or "": a test
// kernel cached under
// <cacheDir>/testdata/kernel, the kernel of a locally built image under
// <cacheDir>/images, or the host's /boot/vmlinuz-<release>.
func FindProbeKernel(cacheDir string) string {
	var cands []string
	if cacheDir != "" {
		for _, g := range []string{"testdata/kernel/*/vmlinuz", "images/*/vmlinuz"} {
			m, _ := filepath.Glob(filepath.Join(cacheDir, g))
			cands = append(cands, m...)
		}
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		cands = append(cands, "/boot/vmlinuz-"+unix.ByteSliceToString(u.Release[:]))
	}
	cands = append(cands, "/boot/vmlinuz")
	for _, c := range cands {
		if f, err := os.Open(c); err == nil {
			f.Close()
			return c
		}
	}
	return ""
}
