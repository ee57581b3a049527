package imagebuild

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gofrs/flock"
)

// Interrupted is the temporary directory of a build that did not finish
// (its builder was killed): what it had mounted, and whether removing it
// worked.
type Interrupted struct {
	Dir string `json:"dir"`
	// Mounts are the mount points found under Dir (deepest first), which
	// are detached before anything is removed.
	Mounts []string `json:"mounts,omitempty"`
	// InUse is true when a build of the same image runs now (its lock is
	// held): the directory is kept.
	InUse bool   `json:"inUse,omitempty"`
	Err   string `json:"error,omitempty"`
}

// CleanInterrupted removes the temporary directories that interrupted
// builds left under <cacheDir>/images (.tmp-<key>-*), unless a build of
// that key runs now. A killed bootstrap may have left /proc, /sys and /dev
// mounted inside: they are read from /proc/self/mountinfo and detached
// deepest first (MNT_DETACH), and the directory is removed only when no
// mount remains under it, so the removal never descends into a mount
// (through a bind mount of /dev it would delete the host's device nodes).
// With dryRun nothing changes.
func CleanInterrupted(cacheDir string, dryRun bool) ([]Interrupted, error) {
	imagesDir := filepath.Join(cacheDir, "images")
	dirs, err := filepath.Glob(filepath.Join(imagesDir, ".tmp-*"))
	if err != nil {
		return nil, err
	}
	var out []Interrupted
	for _, d := range dirs {
		fi, err := os.Lstat(d)
		if err != nil || !fi.IsDir() {
			continue
		}
		it := Interrupted{Dir: d}
		it.Mounts, _ = mountsUnder(d)
		key := strings.TrimPrefix(filepath.Base(d), ".tmp-")
		if i := strings.LastIndexByte(key, '-'); i > 0 {
			key = key[:i]
		}
		l := flock.New(EntryDir(cacheDir, key) + ".lock")
		locked, err := l.TryLock()
		if err != nil || !locked {
			it.InUse = true
			out = append(out, it)
			continue
		}
		if !dryRun {
			if err := removeBuildDir(d); err != nil {
				it.Err = err.Error()
			}
		}
		_ = l.Unlock()
		out = append(out, it)
	}
	return out, nil
}

// String is one line for the CLI.
func (i Interrupted) String() string {
	s := i.Dir
	if len(i.Mounts) > 0 {
		s += fmt.Sprintf(" (unmounted %s)", strings.Join(i.Mounts, ", "))
	}
	return s
}
