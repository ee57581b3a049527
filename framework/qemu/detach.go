package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

// ErrNotDetached is returned by Detach for an instance started without
// WithDetached: such a QEMU dies with this process, so letting go of it
// would only orphan a guest that is about to be killed.
var ErrNotDetached = errors.New("qemu: not started WithDetached")

// Detach lets a QEMU started WithDetached run on without this process:
// it stops watching the start context, closes the QMP connection and the
// events file, and leaves the process, its QMP socket, pidfile and run
// dir in place. Later Shutdown, Kill and context ends do nothing to it;
// reach it through its QMP socket (QMPCommand) and its pid.
func (i *Instance) Detach() error {
	if !i.detached {
		return ErrNotDetached
	}
	i.stopMu.Lock()
	if i.stopping {
		i.stopMu.Unlock()
		return errors.New("qemu: Detach after Shutdown")
	}
	if i.stopCtx != nil {
		i.stopCtx()
		i.stopCtx = nil
	}
	// From here Shutdown, Kill and cleanup leave QEMU and its files alone.
	i.stopping, i.cleaned, i.released = true, true, true
	i.stopMu.Unlock()
	i.closeMonitor()
	return nil
}

// closeMonitor disconnects QMP, waits for the event reader, and closes the
// events file.
func (i *Instance) closeMonitor() {
	if i.mon != nil {
		i.mon.Disconnect()
		<-i.evDone
	}
	i.evMu.Lock()
	if i.evFile != nil {
		i.evFile.Close()
		i.evFile = nil
	}
	i.evMu.Unlock()
}

func (i *Instance) isReleased() bool {
	i.stopMu.Lock()
	defer i.stopMu.Unlock()
	return i.released
}

// QMPCommand connects to a QEMU's QMP socket (one this process did not
// start: a detached guest), runs one command and disconnects, all bounded
// by ctx. It returns the command's "return" value.
func QMPCommand(ctx context.Context, socket, command string, args any) (json.RawMessage, error) {
	b, err := json.Marshal(qmp.Command{Execute: command, Args: args})
	if err != nil {
		return nil, err
	}
	timeout := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	mon, err := qmp.NewSocketMonitor("unix", socket, timeout)
	if err != nil {
		return nil, fmt.Errorf("qmp %s on %s: %w", command, socket, err)
	}
	type result struct {
		out []byte
		err error
	}
	ch := make(chan result, 1)
	// go-qemu's Connect and Run have no context: they run in a goroutine
	// and the connection is closed when ctx ends first.
	go func() {
		if err := mon.Connect(); err != nil {
			ch <- result{nil, err}
			return
		}
		// Events must be drained or a reply can block behind one.
		if evs, err := mon.Events(context.Background()); err == nil {
			go func() {
				for range evs {
				}
			}()
		}
		out, err := mon.Run(b)
		ch <- result{out, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		mon.Disconnect()
		return nil, fmt.Errorf("qmp %s on %s: %w", command, socket, ctx.Err())
	}
	mon.Disconnect()
	if r.err != nil {
		return nil, fmt.Errorf("qmp %s on %s: %w", command, socket, r.err)
	}
	var resp struct {
		Return json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal(r.out, &resp); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	return resp.Return, nil
}

// ProcessStart is the start time of a live process (clock ticks after
// boot, from /proc/<pid>/stat): with the pid it names one process for as
// long as the machine runs, which a pid alone does not (pids are reused).
func ProcessStart(pid int) (uint64, error) { return procStart(pid) }

// ProcessAlive says whether pid is still the process that started at
// start: false once it exited (a zombie counts as gone) or the pid was
// reused by another process.
func ProcessAlive(pid int, start uint64) bool { return processAlive(pid, start) }

// BootID identifies the running kernel boot (a record from an earlier
// boot names processes that cannot exist any more).
func BootID() string { return bootID() }
