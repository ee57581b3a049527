package framework

import (
	"fmt"
	"sync"
	"time"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/intervals"
)

var (
	intervalsOnce sync.Once
	intervalSet   *intervals.Set
	intervalsErr  error
	usedAccel     string // the accelerator the last guest ran on
)

func intervalsSet() *intervals.Set {
	intervalsOnce.Do(func() {
		opts := []intervals.Option{intervals.WithEnv()}
		if f := current().IntervalsFile; f != "" {
			opts = append(opts, intervals.WithFile(f))
		}
		intervalSet, intervalsErr = intervals.Load(opts...)
		if intervalsErr == nil {
			// A foreign-arch run (aarch64 guests on an x86_64 host) gets
			// the measured foreign factor (defaults.yaml `foreign:`).
			intervalSet = intervalSet.ForGuest(current().Arch, catalog.HostArch())
		}
	})
	if intervalsErr != nil {
		panic(fmt.Sprintf("loading intervals: %v", intervalsErr))
	}
	return intervalSet
}

// accelForIntervals is the accelerator timeouts are scaled for: the one a
// guest actually ran on, else the configured one, "auto" counting as the
// slowest (TCG) since a KVM attempt may fall back to it.
func accelForIntervals() string {
	stateMu.Lock()
	a := usedAccel
	stateMu.Unlock()
	if a != "" {
		return a
	}
	if a = current().Accel; a == "" || a == "auto" {
		return "tcg"
	}
	return a
}

// Interval is a named interval ("engine", "default/wait-ssh", ...) scaled
// for the accelerator; specs use names, never literals, so TCG needs a
// configuration change, not a code change. An unknown name panics while
// the tree is built.
func Interval(name string) time.Duration {
	return intervalsSet().MustGet(name, accelForIntervals())
}

// BootTimeout bounds a template's BeforeAll: image, boot, provisioning and
// probes, each phase with its own interval, plus an image build.
func BootTimeout(t *catalog.Template) time.Duration {
	// Image download or local build; a foreign-arch build runs the guest's
	// package scripts through qemu-user, slower by the foreign factor.
	total := time.Duration(float64(30*time.Minute) * intervalsSet().Factor())
	for _, n := range []string{"default/wait-kernel", "default/wait-userspace", "default/wait-ssh", "default/wait-cloud-init"} {
		total += Interval(n)
	}
	for _, p := range t.Probes {
		d, err := intervalsSet().Resolve(orDefault(p.Timeout, "default/probe"), accelForIntervals())
		if err != nil {
			d = Interval("default/probe")
		}
		total += d
	}
	// A KVM attempt that stalls costs one watchdog interval before TCG.
	return total + Interval("accel/kvm-stall")
}

func orDefault(s, d string) string {
	if s == "" || s == "probe" {
		return d
	}
	return s
}
