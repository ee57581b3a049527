package machine

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Detach leaves a ready machine started with Config.Detached running after
// this process exits: QEMU, its run dir (overlay, seed, keys, QMP socket)
// and its artifacts stay; the SSH client, the console watcher and the QMP
// connection of this process are closed. The machine is no longer Live
// and Close does nothing to it. Whoever detaches owns the cleanup (see
// framework/instance).
func (m *Machine) Detach() error {
	if !m.cfg.Detached {
		return errors.New("machine.Detach: the machine was not started with Config.Detached")
	}
	if m.vm == nil {
		return errors.New("machine.Detach: the machine is not running")
	}
	if err := m.vm.Detach(); err != nil {
		return fmt.Errorf("machine.Detach: %w", err)
	}
	m.closeOnce.Do(func() {
		if m.ssh != nil {
			m.ssh.Close()
		}
		if m.stopWatch != nil {
			m.stopWatch()
		}
		if m.lifeCancel != nil {
			m.lifeCancel()
		}
	})
	return nil
}

// Discard ends a disposable machine at once: no guest logs are collected
// and no ACPI powerdown is waited for (nothing in the guest is kept), QEMU
// gets SIGKILL at once (no `quit` round trip), and the run dir is removed. Like Close it
// is idempotent and leaves nothing behind; it is what a `run --rm` guest
// ends with, where the seconds Close spends on a graceful shutdown would
// be the larger part of the run.
func (m *Machine) Discard(ctx context.Context) error { return m.stop(ctx, false) }

// Started is when QEMU started (zero before launch).
func (m *Machine) Started() time.Time { return m.bootStart }
