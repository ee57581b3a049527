package instance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/guestcatalog/guestcatalog/framework/qemu"
)

// GcEntry is one instance directory Gc looked at.
type GcEntry struct {
	Name   string `json:"name"`
	Dir    string `json:"dir"`
	Reason string `json:"reason"`
}

// GcResult lists the instance directories removed (or, in a dry run, that
// would be) and those kept.
type GcResult struct {
	Dir     string    `json:"dir"`
	DryRun  bool      `json:"dryRun"`
	Removed []GcEntry `json:"removed"`
	Kept    []GcEntry `json:"kept"`
}

// staleNew is how old an unfinished reservation (.new-*) must be before
// Gc removes it: a live Up renames its own within milliseconds.
const staleNew = 10 * time.Minute

// Gc removes instances whose QEMU is dead (killed, crashed, or from before
// the last boot) and those whose starting process died before the guest
// was ready (killing the QEMU it may have started). A running instance,
// one being started, and anything without a readable record are kept.
func (s *Store) Gc(ctx context.Context, dryRun bool) (GcResult, error) {
	res := GcResult{Dir: s.dir, DryRun: dryRun, Removed: []GcEntry{}, Kept: []GcEntry{}}
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return res, err
	}
	var errs []string
	for _, de := range des {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		dir := filepath.Join(s.dir, de.Name())
		e := GcEntry{Name: de.Name(), Dir: dir}
		if strings.HasPrefix(de.Name(), ".new-") {
			if fi, err := de.Info(); err == nil && time.Since(fi.ModTime()) > staleNew {
				e.Reason = "unfinished reservation"
				if !dryRun {
					os.RemoveAll(dir)
				}
				res.Removed = append(res.Removed, e)
			}
			continue
		}
		if !de.IsDir() {
			continue
		}
		r, err := ReadRecord(dir)
		if err != nil {
			e.Reason = "not provably an instance: " + err.Error()
			res.Kept = append(res.Kept, e)
			continue
		}
		switch r.Status() {
		case Running:
			e.Reason = fmt.Sprintf("qemu pid %d is running", r.QEMU.PID)
			res.Kept = append(res.Kept, e)
			continue
		case Starting:
			e.Reason = fmt.Sprintf("being started by pid %d", r.Creator.PID)
			res.Kept = append(res.Kept, e)
			continue
		}
		e.Reason = deadReason(r)
		if !dryRun {
			i := &Instance{Record: *r, Dir: dir}
			if err := killOrphan(i); err != nil {
				errs = append(errs, err.Error())
				continue
			}
			if err := os.RemoveAll(dir); err != nil {
				errs = append(errs, err.Error())
				continue
			}
		}
		res.Removed = append(res.Removed, e)
	}
	// Proxy helpers whose instance is gone (removed, or dead and not
	// removed above): they stop themselves within a poll; kill one that
	// did not. A live instance's helper is never among them.
	for _, h := range s.orphanHelpers() {
		e := GcEntry{Name: filepath.Base(h.Dir), Dir: h.Dir, Reason: fmt.Sprintf("egress proxy helper pid %d of an instance that is gone", h.PID)}
		if !dryRun {
			if err := stopProxyHelper(h.Proc); err != nil {
				errs = append(errs, err.Error())
				continue
			}
		}
		res.Removed = append(res.Removed, e)
	}
	if len(errs) > 0 {
		return res, fmt.Errorf("instance gc: %s", strings.Join(errs, "; "))
	}
	return res, nil
}

func deadReason(r *Record) string {
	switch {
	case r.BootID != "" && r.BootID != qemu.BootID():
		return "started before the last boot"
	case r.State == StateRunning:
		return fmt.Sprintf("qemu pid %d is gone", r.QEMU.PID)
	default:
		return fmt.Sprintf("pid %d died while starting it", r.Creator.PID)
	}
}
