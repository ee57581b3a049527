package qemu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// GcEntry is what Gc found in one entry of the run root.
type GcEntry struct {
	Dir    string `json:"dir"`
	Reason string `json:"reason"`
	// Killed lists the QEMU processes killed (or, in a dry run, that
	// would be) because their command line names this run dir.
	Killed []int  `json:"killed,omitempty"`
	Owner  *Owner `json:"owner,omitempty"`
}

// GcResult lists the run dirs removed (or, in a dry run, that would be)
// and those kept, with why.
type GcResult struct {
	Root    string    `json:"root"`
	DryRun  bool      `json:"dryRun"`
	Removed []GcEntry `json:"removed"`
	Kept    []GcEntry `json:"kept"`
}

// GcOption configures Gc.
type GcOption func(*gcConfig)

type gcConfig struct {
	root   string
	dryRun bool
	log    *slog.Logger
}

// GcRoot sets the run root to clean ("" : DefaultRunRoot()).
func GcRoot(root string) GcOption { return func(c *gcConfig) { c.root = root } }

// GcDryRun reports what would be removed and removes nothing.
func GcDryRun(dry bool) GcOption { return func(c *gcConfig) { c.dryRun = dry } }

// GcLogger logs what Gc does.
func GcLogger(l *slog.Logger) GcOption { return func(c *gcConfig) { c.log = l } }

// Gc removes what crashed runs left behind, and only what is provably
// ours: run dirs under the run root whose owner.json names a process that
// is gone (same boot, PID and start time no longer match) or that were
// made before the last boot. QEMU processes whose command line names such
// a run dir are killed first. Run dirs without a readable owner.json, or
// whose owner lives, are kept.
func Gc(ctx context.Context, opts ...GcOption) (GcResult, error) {
	cfg := gcConfig{root: DefaultRunRoot(), log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.root == "" {
		cfg.root = DefaultRunRoot()
	}
	res := GcResult{Root: cfg.root, DryRun: cfg.dryRun}
	ents, err := os.ReadDir(cfg.root)
	if errors.Is(err, os.ErrNotExist) {
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("reading run root: %w", err)
	}
	boot := bootID()
	var errs []error
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		dir := filepath.Join(cfg.root, e.Name())
		if !e.IsDir() {
			res.Kept = append(res.Kept, GcEntry{Dir: dir, Reason: "not a directory"})
			continue
		}
		o, err := ReadOwner(dir)
		if err != nil {
			res.Kept = append(res.Kept, GcEntry{Dir: dir, Reason: "not provably ours: " + err.Error()})
			continue
		}
		ent := GcEntry{Dir: dir, Owner: &o}
		switch {
		case o.BootID != "" && o.BootID != boot:
			ent.Reason = "created before the last boot"
		case processAlive(o.PID, o.PIDStart):
			ent.Reason = fmt.Sprintf("owner pid %d is alive", o.PID)
			res.Kept = append(res.Kept, ent)
			continue
		default:
			ent.Reason = fmt.Sprintf("owner pid %d is gone", o.PID)
		}
		ent.Killed = qemuProcessesOf(dir, o, boot)
		if cfg.dryRun {
			res.Removed = append(res.Removed, ent)
			continue
		}
		for _, pid := range ent.Killed {
			cfg.log.Info("gc: killing leftover qemu", "pid", pid, "runDir", dir)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if err := waitGone(ctx, ent.Killed, 5*time.Second); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", dir, err))
			res.Kept = append(res.Kept, GcEntry{Dir: dir, Reason: err.Error(), Owner: &o, Killed: ent.Killed})
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", dir, err))
			continue
		}
		if err := os.Remove(MemoryFileFor(dir)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		cfg.log.Info("gc: removed run dir", "dir", dir, "reason", ent.Reason)
		res.Removed = append(res.Removed, ent)
	}
	return res, errors.Join(errs...)
}

// qemuProcessesOf finds live QEMU processes that belong to a run dir: the
// one recorded in owner.json (if it is still the same process) and any
// qemu-* process whose command line names a file in the dir.
func qemuProcessesOf(dir string, o Owner, boot string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		argv := procCmdline(pid)
		if len(argv) == 0 || !strings.HasPrefix(filepath.Base(argv[0]), "qemu") {
			continue
		}
		if state, _, err := procStat(pid); err != nil || state == 'Z' {
			continue
		}
		if referencesDir(argv, dir) {
			pids = append(pids, pid)
		}
	}
	if o.QEMUPID > 0 && o.BootID == boot && processAlive(o.QEMUPID, o.QEMUStart) &&
		!slices.Contains(pids, o.QEMUPID) && referencesDir(procCmdline(o.QEMUPID), dir) {
		pids = append(pids, o.QEMUPID)
	}
	slices.Sort(pids)
	return pids
}

func referencesDir(argv []string, dir string) bool {
	for _, a := range argv {
		// QEMU options escape commas by doubling them.
		a = strings.ReplaceAll(a, ",,", ",")
		if strings.Contains(a, dir+string(filepath.Separator)) || strings.HasSuffix(a, "="+dir) || a == dir {
			return true
		}
	}
	return false
}

func waitGone(ctx context.Context, pids []int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var alive []int
		for _, pid := range pids {
			if state, _, err := procStat(pid); err == nil && state != 'Z' && state != 'X' {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("qemu processes %v still alive after SIGKILL", alive)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
