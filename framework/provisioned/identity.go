package provisioned

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/guestcatalog/guestcatalog/framework/machine"
)

// FileID identifies a saved file as it was committed. Resuming checks the
// cheap part (size, mtime, inode: any write through the file system moves
// the mtime, any replacement the inode) of the disk and the RAM, and the
// digest of the small device state, every time: hashing the disk and the
// RAM (hundreds of MB) on every resume would cost seconds. Their digests
// are recorded for a full check (VerifyDigests).
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
// digest. A failure wraps machine.ErrSavedGuestMismatch: the entry must
// be discarded and the reason reported. The host key is checked by the
// resumed guest's SSH handshake.
func (e *Entry) Verify() error {
	if len(e.Meta.Files) == 0 {
		return fmt.Errorf("%w: %s records no file identities", machine.ErrSavedGuestMismatch, e.Dir)
	}
	for _, f := range identified() {
		want, ok := e.Meta.Files[f]
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
		if got != want {
			return fmt.Errorf("%w: %s is not the file saved (size %d, mtime %d, inode %d, %s; saved: size %d, mtime %d, inode %d, %s)",
				machine.ErrSavedGuestMismatch, e.Path(f), got.Size, got.MTimeNs, got.Inode, got.SHA256, want.Size, want.MTimeNs, want.Inode, want.SHA256)
		}
	}
	return nil
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
