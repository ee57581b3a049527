package provisioned

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"syscall"

	"github.com/guestcatalog/guestcatalog/framework/fsutil"
	"github.com/guestcatalog/guestcatalog/framework/machine"
)

// FileID identifies a saved file as it was committed. Resuming checks the
// cheap part (size, mtime, inode: any write through the file system moves
// the mtime, any replacement the inode) of the disk and the RAM, and the
// digest of the small device state, every time: hashing the disk and the
// RAM (hundreds of MB) on every resume would cost seconds. Their digests
// are recorded for a full check (VerifyDigests), and for a copied cache:
// a file whose size matches but whose inode or mtime moved (cp -a, rsync,
// a tar restore, CI's cache) is hashed once; with the saved digest it is
// the same file, and its new identity is recorded.
type FileID struct {
	Size    int64  `json:"size"`
	MTimeNs int64  `json:"mtimeNs"`
	Inode   uint64 `json:"inode"`
	SHA256  string `json:"sha256,omitempty"`
}

// identified are the files with a FileID; stateFile is hashed on every
// resume too.
func identified() []string { return []string{FileDisk, FileRAM, FileState} }

const stateFile = FileState

func identify(path string, digest bool) (FileID, error) {
	st, err := os.Stat(path)
	if err != nil {
		return FileID{}, err
	}
	id := FileID{Size: st.Size(), MTimeNs: st.ModTime().UnixNano()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		id.Inode = sys.Ino
	}
	if digest {
		if id.SHA256, err = fileDigest(path); err != nil {
			return FileID{}, err
		}
	}
	return id, nil
}

func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// Verify is the identity check of an entry before it is resumed: the
// disk and the RAM as committed (size, mtime, inode), the device state's
// digest. A file of the saved size whose inode or mtime differ (a copied
// or restored cache) is hashed and compared with its saved digest: the
// same bytes pass, and the entry's meta.json records the new identities
// so that the next resume is cheap again (Rerecorded names the files). A
// failure wraps machine.ErrSavedGuestMismatch: the entry must be
// discarded and the reason reported. The host key is checked by the
// resumed guest's SSH handshake. The caller holds the entry's lock or
// tolerates a concurrent rewrite of meta.json (it is atomic, and two
// verifiers write the same identities).
func (e *Entry) Verify() error {
	if len(e.Meta.Files) == 0 {
		return fmt.Errorf("%w: %s records no file identities", machine.ErrSavedGuestMismatch, e.Dir)
	}
	files := maps.Clone(e.Meta.Files)
	var moved []string
	for _, f := range identified() {
		want, ok := files[f]
		if !ok {
			return fmt.Errorf("%w: %s records no identity for %s", machine.ErrSavedGuestMismatch, e.Dir, f)
		}
		got, err := identify(e.Path(f), f == stateFile)
		if err != nil {
			return fmt.Errorf("%w: %w", machine.ErrSavedGuestMismatch, err)
		}
		if f != stateFile {
			got.SHA256 = want.SHA256
		}
		if got == want {
			continue
		}
		if got.Size != want.Size || got.SHA256 != want.SHA256 || want.SHA256 == "" {
			return mismatch(e.Path(f), got, want)
		}
		// Same size, moved inode or mtime: the bytes decide.
		if got.SHA256, err = fileDigest(e.Path(f)); err != nil {
			return fmt.Errorf("%w: %w", machine.ErrSavedGuestMismatch, err)
		}
		if got.SHA256 != want.SHA256 {
			return mismatch(e.Path(f), got, want)
		}
		files[f] = got
		moved = append(moved, f)
	}
	if len(moved) == 0 {
		return nil
	}
	m := e.Meta
	m.Files = files
	if err := e.rewriteMeta(m); err != nil {
		return fmt.Errorf("recording the identities of %s's copied files: %w", e.Dir, err)
	}
	e.Rerecorded = moved
	return nil
}

// rewriteMeta replaces the committed entry's meta.json with m (atomically:
// a reader sees the old or the new one) and e.Meta with it.
func (e *Entry) rewriteMeta(m Meta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(e.Path(FileMeta), append(b, '\n'), 0o644); err != nil {
		return err
	}
	e.Meta = m
	return nil
}

func mismatch(path string, got, want FileID) error {
	return fmt.Errorf("%w: %s is not the file saved (size %d, mtime %d, inode %d, %s; saved: size %d, mtime %d, inode %d, %s)",
		machine.ErrSavedGuestMismatch, path, got.Size, got.MTimeNs, got.Inode, got.SHA256, want.Size, want.MTimeNs, want.Inode, want.SHA256)
}

// VerifyDigests hashes the disk, the RAM and the state and compares them
// with the digests recorded when they were saved (seconds: for `cache
// verify`, not for every resume).
func (e *Entry) VerifyDigests() error {
	for _, f := range identified() {
		want := e.Meta.Files[f]
		got, err := fileDigest(e.Path(f))
		if err != nil {
			return err
		}
		if want.SHA256 == "" || got != want.SHA256 {
			return fmt.Errorf("%w: %s: digest %s, saved %s", machine.ErrSavedGuestMismatch, e.Path(f), got, want.SHA256)
		}
	}
	return nil
}
