package exec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	osexec "os/exec"
	"syscall"
	"time"
)

// Host runs commands on this machine with os/exec. Each command runs in its
// own process group; when ctx ends the whole group is killed (a script's
// children too), and Run returns within WaitDelay even if a grandchild keeps
// the output pipes open.
type Host struct {
	// Dir is the working directory (default: the current one).
	Dir string
	// Logger receives one debug line per command (default: silent).
	Logger *slog.Logger
	// WaitDelay bounds the wait for output after the process exited or was
	// killed (default 2s).
	WaitDelay time.Duration
}

var _ Runner = (*Host)(nil)

// Run implements Runner.
func (h *Host) Run(ctx context.Context, cmd Cmd) (Result, error) {
	if err := cmd.Validate(); err != nil {
		return Result{ExitCode: -1}, &RunError{Cmd: cmd.String(), Result: Result{ExitCode: -1}, Err: err}
	}
	argv := cmd.Argv()
	if cmd.Sudo && os.Geteuid() != 0 {
		argv = append([]string{"sudo", "-n", "--"}, argv...)
	}
	c := osexec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Dir = h.Dir
	if len(cmd.Env) > 0 {
		env := c.Environ()
		for _, k := range cmd.envNames() {
			env = append(env, k+"="+cmd.Env[k])
		}
		c.Env = env
	}
	c.Stdin = cmd.Stdin
	stdout, stderr, outW, errW := Capture(cmd)
	c.Stdout, c.Stderr = outW, errW
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error {
		if c.Process == nil {
			return nil
		}
		// Kill the process group: a shell's children die with it.
		if err := syscall.Kill(-c.Process.Pid, syscall.SIGKILL); err != nil {
			return c.Process.Kill()
		}
		return nil
	}
	c.WaitDelay = h.WaitDelay
	if c.WaitDelay == 0 {
		c.WaitDelay = 2 * time.Second
	}

	start := time.Now()
	err := c.Run()
	res := Result{
		Stdout:   stdout.Bytes(),
		Stderr:   stderr.Bytes(),
		Duration: time.Since(start),
		ExitCode: -1,
	}
	if c.ProcessState != nil {
		res.ExitCode = exitCodeOf(c.ProcessState)
	}
	if h.Logger != nil {
		h.Logger.Debug("host command", "cmd", cmd.String(), "exit", res.ExitCode, "duration", res.Duration)
	}
	if err == nil {
		return res, nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		err = fmt.Errorf("%w (%v)", ctxErr, err)
	} else if errors.Is(err, osexec.ErrWaitDelay) && res.ExitCode == 0 {
		// The command succeeded; only a leftover child held the pipes.
		return res, nil
	}
	return res, &RunError{Cmd: cmd.String(), Result: res, Err: err}
}

// exitCodeOf maps a process state to a shell-style exit code: the exit
// status, or 128+signal when a signal ended the process.
func exitCodeOf(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
