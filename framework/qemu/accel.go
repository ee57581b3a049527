package qemu

import (
	"context"
	"errors"
	"fmt"
	"github.com/guestcatalog/guestcatalog/catalog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guestcatalog/guestcatalog/framework/console"
)

// KVM ioctls (linux/kvm.h).
const (
	kvmGetAPIVersion = 0xAE00
	kvmCreateVM      = 0xAE01
	kvmAPIVersion    = 12
)

// KVMDevice is the KVM device node.
const KVMDevice = "/dev/kvm"

// KVMUsable says whether KVM can possibly run a guest of arch here:
// same arch as the host, /dev/kvm opens read-write, KVM_GET_API_VERSION
// answers 12 and KVM_CREATE_VM succeeds. It cannot say whether a guest
// will make progress (nested KVM here creates VMs whose Linux guests
// hang): Launch judges that by the console.
func KVMUsable(arch string) error {
	if arch == "" {
		arch = catalog.HostArch()
	}
	if arch != catalog.HostArch() {
		return fmt.Errorf("guest arch %s differs from the host's %s", arch, catalog.HostArch())
	}
	fd, err := unix.Open(KVMDevice, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", KVMDevice, err)
	}
	defer unix.Close(fd)
	v, err := unix.IoctlRetInt(fd, kvmGetAPIVersion)
	if err != nil {
		return fmt.Errorf("KVM_GET_API_VERSION: %w", err)
	}
	if v != kvmAPIVersion {
		return fmt.Errorf("KVM API version %d, want %d", v, kvmAPIVersion)
	}
	vm, err := unix.IoctlRetInt(fd, kvmCreateVM)
	if err != nil {
		return fmt.Errorf("KVM_CREATE_VM: %w", err)
	}
	unix.Close(vm)
	return nil
}

// AccelDecision records how Launch chose the accelerator.
type AccelDecision struct {
	// Requested is what was asked for (after GUESTCATALOG_ACCEL): auto,
	// kvm or tcg.
	Requested string `json:"requested"`
	// Tried lists the accelerators started, in order.
	Tried []string `json:"tried"`
	// Used is the accelerator of the returned instance.
	Used string `json:"used"`
	// Reason explains the choice in one line.
	Reason string `json:"reason"`
	// KVMAttempt is how long the abandoned KVM attempt took (0 if none).
	KVMAttempt time.Duration `json:"kvmAttempt,omitempty"`
}

// ResolveAccel returns accel, else auto, and checks it is one of auto,
// kvm, tcg.
func ResolveAccel(accel string) (string, error) {
	if accel == "" {
		accel = AccelAuto
	}
	switch accel {
	case AccelAuto, AccelKVM, AccelTCG:
		return accel, nil
	}
	return "", fmt.Errorf("accelerator %q: want %s, %s or %s", accel, AccelAuto, AccelKVM, AccelTCG)
}

// Launch starts spec under an accelerator chosen by behaviour. accel is
// auto, kvm or tcg ("" : auto); spec.Accel is
// ignored. kvm and tcg are used as they are. auto tries KVM where it can
// work (KVMUsable) and keeps it only if the guest's console shows kernel
// progress (console.KernelStarted()) within interval accel/kvm-stall; if
// QEMU exits or the console stalls, that QEMU is killed, its logs are
// kept as serial-kvm.log and qemu-kvm.log, and the same spec is started
// under TCG. A spec that resumes a snapshot (LoadVM, Incoming) is not judged by its
// console (a resumed guest prints nothing): auto then uses TCG; pass the
// accelerator the snapshot was saved with.
func Launch(ctx context.Context, spec Spec, accel string, opts ...Option) (*Instance, AccelDecision, error) {
	accel, err := ResolveAccel(accel)
	if err != nil {
		return nil, AccelDecision{}, err
	}
	dec := AccelDecision{Requested: accel}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, dec, err
	}
	spec = spec.withDefaults()
	if accel != AccelAuto {
		spec.Accel = accel
		dec.Tried, dec.Used, dec.Reason = []string{accel}, accel, accel+": requested"
		inst, err := startArmed(ctx, spec, cfg)
		return inst, dec, err
	}

	var why string
	switch {
	case spec.LoadVM != "" || spec.Incoming:
		why = "auto with loadvm: a resumed guest shows no boot progress to judge KVM by"
	default:
		if err := KVMUsable(spec.Arch); err != nil {
			why = "kvm unusable: " + err.Error()
		}
	}
	if why != "" {
		spec.Accel = AccelTCG
		dec.Tried, dec.Used, dec.Reason = []string{AccelTCG}, AccelTCG, why+"; using tcg"
		inst, err := startArmed(ctx, spec, cfg)
		return inst, dec, err
	}

	// Both attempts share one run dir, so the KVM attempt's logs stay
	// beside the TCG run's.
	own := cfg.runDir == nil
	if own {
		rd, err := NewRunDir(cfg.runRoot, spec.Name)
		if err != nil {
			return nil, dec, fmt.Errorf("starting qemu: %w", err)
		}
		cfg.runDir = rd
	}
	fail := func(err error) (*Instance, AccelDecision, error) {
		if own {
			cfg.runDir.Remove()
		}
		return nil, dec, err
	}

	stall := cfg.kvmStall
	if stall == 0 {
		if stall, err = cfg.intervals.Get("accel/kvm-stall", AccelKVM); err != nil {
			return fail(err)
		}
	}
	kspec := spec
	kspec.Accel = AccelKVM
	dec.Tried = append(dec.Tried, AccelKVM)
	t0 := time.Now()
	inst, err := start(ctx, kspec, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return fail(err)
		}
		why = "kvm: qemu failed: " + shortErr(err)
	} else {
		wctx, cancel := context.WithTimeout(ctx, stall)
		m, werr := console.Wait(wctx, console.WaitInput{
			Path: inst.SerialLog(),
			Want: []console.Pattern{console.KernelStarted()},
			Fail: []console.Pattern{},
			Options: []console.FollowOption{
				console.WithStop(inst.Exited()),
				console.WithPoll(100 * time.Millisecond),
			},
		})
		cancel()
		if werr == nil {
			dec.Used = AccelKVM
			dec.Reason = fmt.Sprintf("kvm: kernel output %.1fs after start (%q)", time.Since(t0).Seconds(), m.Line.Text)
			inst.ownRunDir = own
			inst.armContext(ctx)
			return inst, dec, nil
		}
		inst.Kill()
		inst.cleanup(false)
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		var we *console.WaitError
		switch {
		case errors.Is(werr, console.ErrStopped):
			why = "kvm: qemu exited before kernel output: " + shortErr(inst.exitErr)
		case errors.As(werr, &we) && we.LastLine != "":
			why = fmt.Sprintf("kvm: no console progress past firmware in %s (last line: %q)", stall, we.LastLine)
		default:
			why = fmt.Sprintf("kvm: no console output in %s", stall)
		}
	}
	dec.KVMAttempt = time.Since(t0)
	keepAside(spec, cfg)
	cfg.log.Info("falling back to tcg", "reason", why)

	spec.Accel = AccelTCG
	dec.Tried = append(dec.Tried, AccelTCG)
	dec.Used = AccelTCG
	dec.Reason = why + "; fell back to tcg"
	inst, err = start(ctx, spec, cfg)
	if err != nil {
		return fail(err)
	}
	inst.ownRunDir = own
	inst.armContext(ctx)
	return inst, dec, nil
}

// startArmed starts spec and ties the instance to ctx.
func startArmed(ctx context.Context, spec Spec, cfg *startConfig) (*Instance, error) {
	inst, err := start(ctx, spec, cfg)
	if err != nil {
		return nil, err
	}
	inst.armContext(ctx)
	return inst, nil
}

// keepAside renames the KVM attempt's logs to *-kvm.log.
func keepAside(spec Spec, cfg *startConfig) {
	logDir := cfg.logDir
	if logDir == "" {
		logDir = cfg.runDir.Path()
	}
	serial := spec.SerialLog
	if serial == "" {
		serial = filepath.Join(logDir, SerialLogName)
	}
	os.Rename(serial, strings.TrimSuffix(serial, ".log")+"-kvm.log")
	os.Rename(filepath.Join(logDir, QEMULogName), filepath.Join(logDir, "qemu-kvm.log"))
}

// shortErr is the last line of an error, for one-line reasons.
func shortErr(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if l := ee.lastLine(); l != "" {
			return l
		}
	}
	s := err.Error()
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		s = s[i+1:]
	}
	return s
}
