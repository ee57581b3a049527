package provisioned

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/guestcatalog/guestcatalog/framework/machine"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
)

// relocateTimeout bounds the qemu-img calls of Relocate (a header rewrite
// and a read of the disk's header: milliseconds).
const relocateTimeout = 30 * time.Second

// Relocate points the entry's disk at base when the entry was saved over
// another path: the cache was moved or copied (its saved disks name the
// old cache's base image as their absolute backing file). The caller
// found the entry by its key, which hashes the image's source and digest,
// so base holds the same image; the disk must still name the path it was
// saved over (anything else fails as ErrSavedGuestMismatch). The disk's
// header is rewritten (`qemu-img rebase -u`), its identity and the new
// base recorded in meta.json; MovedFrom says where it came from. Run it
// after Verify, which proves the disk is the one saved.
func (e *Entry) Relocate(ctx context.Context, base, format string) error {
	if base == "" {
		return nil
	}
	abs := absPath(base)
	if abs == e.Meta.Base {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, relocateTimeout)
	defer cancel()
	disk := e.Path(FileDisk)
	info, err := qemu.Info(ctx, disk, qemu.FormatQcow2)
	if err != nil {
		return fmt.Errorf("%w: %w", machine.ErrSavedGuestMismatch, err)
	}
	switch info.BackingFile {
	case e.Meta.Base:
		if err := qemu.RebaseUnsafe(ctx, disk, abs, format); err != nil {
			return err
		}
	case abs:
		// Rebased by another process, which records the same meta.
	default:
		return fmt.Errorf("%w: %s: backing-filename is %q; it was saved over %s", machine.ErrSavedGuestMismatch, disk, info.BackingFile, e.Meta.Base)
	}
	id, err := identify(disk, true)
	if err != nil {
		return err
	}
	m := e.Meta
	m.Files = maps.Clone(e.Meta.Files)
	m.Files[FileDisk] = id
	from := m.Base
	m.Base = abs
	if err := e.rewriteMeta(m); err != nil {
		return fmt.Errorf("recording %s's new base image: %w", e.Dir, err)
	}
	e.MovedFrom = from
	return nil
}
