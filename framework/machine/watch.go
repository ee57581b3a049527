package machine

import (
	"context"
	"log/slog"
	"regexp"

	"github.com/guestcatalog/guestcatalog/framework/console"
)

// watchConsole follows the serial log at path and feeds the monitor:
// progress marks (kernel, userspace, login, cloud-init-finished) and the
// first failure (panic, oops, emergency mode, root not found, OOM kill).
// Warnings (soft lockups on a busy TCG host) are logged only. Following
// ends when ctx ends or stop is closed (after reading the file to its end).
// The returned channel is closed when the watcher has finished.
func watchConsole(ctx context.Context, path string, stop <-chan struct{}, mon *monitor, logger *slog.Logger) <-chan struct{} {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	done := make(chan struct{})
	var opts []console.FollowOption
	if stop != nil {
		opts = append(opts, console.WithStop(stop))
	}
	// Every pattern is tried on every line (a line can show several
	// progress marks: "[ 3.1] systemd[1]: ..." is both kernel and init).
	progress := append(console.ProgressPatterns(), initStarted())
	failures := console.FailurePatterns()
	warnings := console.WarningPatterns()
	lines := console.Follow(ctx, path, opts...)
	go func() {
		defer close(done)
		for l := range lines {
			for _, p := range failures {
				if p.Re.MatchString(l.Text) {
					logger.Warn("console failure", "pattern", p.Name, "line", l.Text)
					mon.Failure(p.Name, l.Text)
				}
			}
			for _, p := range warnings {
				if !l.Partial && p.Re.MatchString(l.Text) {
					logger.Info("console warning", "pattern", p.Name, "line", l.Text)
				}
			}
			if mon.onStep != nil && !l.Partial {
				if ev, ok := parseProvisionLine(l.Text); ok {
					mon.onStep(ev)
				}
			}
			for _, p := range progress {
				if p.Re.MatchString(l.Text) {
					mon.Progress(p.Name, l.Text)
				}
			}
		}
	}()
	return done
}

// initStarted marks the system's own init running: systemd (PID 1 from the
// root filesystem), OpenRC, SysV init, or a kernel started without an
// initramfs. console.Userspace() also matches an initramfs's /init, which
// runs before the root filesystem is found: a guest whose root= is wrong
// gets that far, so it does not count as userspace here.
func initStarted() console.Pattern {
	return console.Pattern{Name: "init", Kind: console.Progress, Re: initStartedRE}
}

var initStartedRE = regexp.MustCompile(`systemd\[1\]: |^Welcome to .*!|OpenRC .* is starting up|^INIT: version|Run /sbin/init as init process|Run /(usr/)?lib/systemd/systemd as init process`)

// consolePhase waits for a console progress mark (console.KernelStarted().Name,
// console.Userspace().Name) and returns the line that showed it.
func consolePhase(mon *monitor, mark string) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		return mon.WaitProgress(ctx, mark)
	}
}
