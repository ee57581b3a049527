package instance

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/guestcatalog/guestcatalog/framework/intervals"
	"github.com/guestcatalog/guestcatalog/framework/machine"
)

// RunInput says what a disposable guest runs.
type RunInput struct {
	Guest *Guest
	// Args is the command (each argument quoted; none: the login shell).
	Args    []string
	Streams Streams
	// Mounts are --mount values (see UpInput.Mounts; mounts.go).
	Mounts []MountSpec
	// RunRoot is where the run dir goes ("" : qemu's run root, which
	// qemu.Gc cleans after a crash).
	RunRoot   string
	Intervals *intervals.Set
	Logger    *slog.Logger
	// Timings, when set, receives when the command was started and when
	// everything was removed.
	Timings *RunTimings
}

// RunTimings are the moments of a Run, from its call.
type RunTimings struct {
	Begin   time.Time
	Mount   time.Duration // mounting the shares took (mounts.go)
	Started time.Duration // the machine's start was called (config read, logs dir made)
	Command time.Duration // the command was sent to the guest
	Done    time.Duration // the command ended
	Removed time.Duration // QEMU stopped, disk and run dir removed
	// Phases of the machine's start (prepare, launch, load, ssh, resume),
	// their Start relative to Started.
	Phases []machine.PhaseTiming
}

// Run is a disposable guest: the saved guest resumed into its own thin
// overlay of the saved disk (RAM mapped copy-on-write from the saved RAM), args run in it, its exit status returned, and everything
// removed (QEMU, disk, run dir, logs), also when ctx ends midway (Ctrl-C):
// QEMU is supervised as every verify guest is (it dies with this process).
func Run(ctx context.Context, in RunInput) (code int, err error) {
	if in.Guest == nil || in.Guest.Template == nil {
		return -1, errors.New("instance.Run: RunInput.Guest is nil")
	}
	t := in.Timings
	if t == nil {
		t = &RunTimings{}
	}
	t.Begin = time.Now()
	cfg, err := in.Guest.resumeConfig(ctx)
	if err != nil {
		return -1, err
	}
	logs, err := os.MkdirTemp("", "guestcatalog-run-")
	if err != nil {
		return -1, err
	}
	defer os.RemoveAll(logs)
	cfg.ArtifactsDir = logs
	cfg.RunRoot = in.RunRoot
	cfg.Intervals = in.Intervals
	cfg.Logger = in.Logger
	plan, err := withMounts(&cfg, in.Mounts)
	if err != nil {
		return -1, err
	}
	t.Started = time.Since(t.Begin)
	m, err := in.Guest.start(ctx, cfg)
	if m != nil {
		t.Phases = m.Phases()
	}
	if err != nil {
		return -1, err // Start removed what it made
	}
	defer func() {
		// Nothing of the guest is kept: SIGKILL, also after Ctrl-C.
		dctx := ctx
		if ctx.Err() == nil {
			dctx = context.WithoutCancel(ctx)
		}
		derr := m.Discard(dctx)
		t.Removed = time.Since(t.Begin)
		if err == nil {
			err = derr
		}
	}()
	if t.Mount, err = mountGuest(ctx, m, cfg.Template.User.Name, plan, in.Logger); err != nil {
		return -1, err
	}
	t.Command = time.Since(t.Begin)
	code, err = stream(ctx, m.SSH(), in.Args, in.Streams)
	t.Done = time.Since(t.Begin)
	return code, err
}
