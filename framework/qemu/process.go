package qemu

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
)

// process is a supervised child: started from a goroutine locked to its
// OS thread, with Pdeathsig=SIGKILL, in its own process group.
type process struct {
	pid   int
	done  chan struct{} // closed after the child is reaped
	state *os.ProcessState
	err   error // from Wait
}

// startProcess starts argv with stdout and stderr going to out.
//
// Pdeathsig is delivered when the thread that forked the child exits, not
// the process. The goroutine that forks therefore locks itself to its OS
// thread and stays blocked in Wait until the child is gone: the runtime
// can neither hand that thread to another goroutine nor end it while the
// child runs. When the goroutine returns, still locked, the runtime ends
// the thread; the child is already reaped by then.
//
// With detached, the child outlives this process instead: it gets its own
// session (no controlling terminal, so neither the terminal's Ctrl-C nor
// its hangup reaches it) and no Pdeathsig; its stdin is /dev/null and its
// output goes to out, a file. It is still reaped here while this process
// runs; after that init (or a subreaper) adopts it.
func startProcess(argv []string, out *os.File, detached bool) (*process, error) {
	if len(argv) == 0 {
		return nil, errors.New("empty command line")
	}
	p := &process{done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		if !detached {
			runtime.LockOSThread()
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdin = nil
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Pdeathsig: syscall.SIGKILL,
			Setpgid:   true,
		}
		if detached {
			// Setsid makes the child a session (and group) leader, so the
			// group signals below still reach exactly QEMU.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		}
		if err := cmd.Start(); err != nil {
			started <- err
			close(p.done)
			return
		}
		p.pid = cmd.Process.Pid
		started <- nil
		p.err = cmd.Wait()
		p.state = cmd.ProcessState
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	return p, nil
}

// signal sends sig to the child's process group (QEMU forks no helpers
// here, but the group is what Setpgid made ours).
func (p *process) signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := syscall.Kill(-p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}
