package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrMigration is wrapped when saving or loading a machine's state fails.
var ErrMigration = errors.New("migration failed")

// MigrationStatus is query-migrate's answer (the fields read here).
type MigrationStatus struct {
	Status    string `json:"status"`
	ErrorDesc string `json:"error-desc"`
	TotalTime int64  `json:"total-time"` // ms
	RAM       struct {
		Transferred int64 `json:"transferred"`
	} `json:"ram"`
}

// SaveState writes the machine's device state (CPU, devices, and RAM not
// held in a shared MemoryFile) to path through a migration stream, with
// x-ignore-shared: RAM in a shared memory file stays out of the stream
// (the file is the saved RAM). Pause the guest first (QMP stop) so that
// RAM, disk and state agree; QEMU stays paused afterwards.
func (i *Instance) SaveState(ctx context.Context, path string) (MigrationStatus, error) {
	if err := i.ignoreShared(ctx); err != nil {
		return MigrationStatus{}, err
	}
	// Unbounded bandwidth: the default cap (128 MiB/s) is for live
	// migration across a network, not a paused guest into a local file.
	if _, err := i.Execute(ctx, "migrate-set-parameters", map[string]any{"max-bandwidth": int64(1) << 40}); err != nil {
		return MigrationStatus{}, fmt.Errorf("%w: %w", ErrMigration, err)
	}
	if _, err := i.Execute(ctx, "migrate", map[string]any{"uri": "exec:cat > " + shellQuote(path)}); err != nil {
		return MigrationStatus{}, fmt.Errorf("%w: saving state to %s: %w", ErrMigration, path, err)
	}
	return i.waitMigration(ctx)
}

// LoadState feeds QEMU (started with Spec.Incoming) the state SaveState
// wrote and waits until it is loaded. The guest stays paused: Continue
// runs it.
func (i *Instance) LoadState(ctx context.Context, path string) (MigrationStatus, error) {
	if !i.spec.Incoming {
		return MigrationStatus{}, errors.New("qemu.LoadState: the spec has no Incoming")
	}
	if err := i.ignoreShared(ctx); err != nil {
		return MigrationStatus{}, err
	}
	if _, err := i.Execute(ctx, "migrate-incoming", map[string]any{"uri": "exec:cat " + shellQuote(path)}); err != nil {
		return MigrationStatus{}, fmt.Errorf("%w: loading state from %s: %w", ErrMigration, path, err)
	}
	return i.waitMigration(ctx)
}

// Continue runs a paused guest (QMP cont).
func (i *Instance) Continue(ctx context.Context) error {
	_, err := i.Execute(ctx, "cont", nil)
	return err
}

func (i *Instance) ignoreShared(ctx context.Context) error {
	_, err := i.Execute(ctx, "migrate-set-capabilities", map[string]any{
		"capabilities": []map[string]any{{"capability": "x-ignore-shared", "state": true}},
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMigration, err)
	}
	return nil
}

// waitMigration polls query-migrate, first every 2 ms and backing off to
// 50 ms: a device-state stream loads in tens of milliseconds, and a
// coarse poll would be most of the wait.
func (i *Instance) waitMigration(ctx context.Context) (MigrationStatus, error) {
	d := 2 * time.Millisecond
	for {
		out, err := i.Execute(ctx, "query-migrate", nil)
		if err != nil {
			return MigrationStatus{}, fmt.Errorf("%w: %w", ErrMigration, err)
		}
		var st MigrationStatus
		if err := json.Unmarshal(out, &st); err != nil {
			return st, fmt.Errorf("%w: query-migrate: %w", ErrMigration, err)
		}
		switch st.Status {
		case "completed":
			return st, nil
		case "failed", "cancelled":
			return st, fmt.Errorf("%w: %s: %s", ErrMigration, st.Status, st.ErrorDesc)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return st, fmt.Errorf("%w: %w", ErrMigration, ctx.Err())
		case <-i.exited:
			t.Stop()
			return st, fmt.Errorf("%w: %w", ErrMigration, ErrExited)
		case <-t.C:
		}
		d = min(2*d, 50*time.Millisecond)
	}
}

// shellQuote quotes a path for the /bin/sh QEMU runs exec: URIs with.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
