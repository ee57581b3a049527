package download

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
)

// lockEntry takes the entry's lock (shared or exclusive), waiting while
// honouring ctx. It creates the entry directory. Because Prune removes
// whole entries, a lock taken on a lock file that has since been unlinked
// is worthless: after locking, the path must still name the locked file,
// else we retry. onWait runs once if the lock is not free at once.
func lockEntry(ctx context.Context, dir string, exclusive bool, poll time.Duration, onWait func()) (unlock func(), err error) {
	path := filepath.Join(dir, lockName)
	waited, retries := false, 0
	for {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("creating cache entry: %w", err)
		}
		fl := flock.New(path, flock.SetPermissions(0o644))
		try := fl.TryLock
		if !exclusive {
			try = fl.TryRLock
		}
		ok, err := try()
		if err == nil && !ok {
			if !waited && onWait != nil {
				onWait()
			}
			waited = true
			if exclusive {
				ok, err = fl.TryLockContext(ctx, poll)
			} else {
				ok, err = fl.TryRLockContext(ctx, poll)
			}
		}
		if errors.Is(err, os.ErrNotExist) && retries < 10 {
			// Prune removed the directory between MkdirAll and open.
			retries++
			fl.Close()
			continue
		}
		if err != nil || !ok {
			fl.Close()
			if err == nil {
				err = ctx.Err()
			}
			return nil, fmt.Errorf("locking cache entry %s: %w", dir, err)
		}
		held, err1 := fl.Stat()
		now, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			return func() { fl.Close() }, nil
		}
		fl.Close() // the entry was removed (pruned) while we waited: start again
	}
}
