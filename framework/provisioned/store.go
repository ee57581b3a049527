package provisioned

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"

	"github.com/guestcatalog/guestcatalog/framework/machine"
)

// Format versions the entry layout, the way keys are computed and the
// device set a guest was saved with (v2: x86_64 guests carry a vmgenid
// device, which a v1 snapshot lacks; v3: no internal snapshot: RAM in a
// memory file and the device state in a migration stream, resumed with
// -incoming into a thin overlay). The key hashes it, so an entry of
// another format is never resumed (Outdated lists them).
const Format = "guestcatalog-provisioned-v3"

// File names inside an entry (machine.Save writes them).
const (
	FileDisk      = machine.SavedDisk      // overlay over the base image
	FileState     = machine.SavedState     // device state (migration stream, no RAM)
	FileRAM       = machine.SavedRAM       // guest RAM (sparse)
	FileClientKey = machine.SavedClientKey // the client key the guest authorizes
	FileHostKey   = machine.SavedHostKey   // the guest's host key (private, PEM)
	FileSeed      = machine.SavedSeed      // the NoCloud seed the guest booted with
	FileMeta      = "meta.json"            // written last: the commit marker
)

// files an entry must hold besides meta.json.
func entryFiles() []string {
	return []string{FileDisk, FileState, FileRAM, FileClientKey, FileHostKey, FileSeed}
}

// Meta describes an entry.
type Meta struct {
	Format   string    `json:"format"`
	Key      string    `json:"key"`
	Template string    `json:"template"`
	Image    string    `json:"image"`       // source URL or build:<suite>
	Digest   string    `json:"imageDigest"` // digest of the base image
	Base     string    `json:"base"`        // the base image path the disk's backing file names
	Accel    string    `json:"accel"`       // the accelerator the guest was saved under
	Created  time.Time `json:"created"`
	// Files identify the disk, RAM and state as saved (identity.go).
	Files map[string]FileID `json:"files,omitempty"`
	// Seconds provisioning took (kernel to probes), what a reuse saves.
	ProvisionSeconds float64 `json:"provisionSeconds"`
	// ClockAtLogin: the saved guest sets its clock itself at the first
	// login after a resume (machine.ClockHookPath).
	ClockAtLogin bool `json:"clockAtLogin,omitempty"`
}

// Entry is a committed provisioned guest.
type Entry struct {
	Dir  string
	Meta Meta
	// Rerecorded names the files whose identity Verify found moved (a
	// copied cache), checked by digest and recorded anew.
	Rerecorded []string
	// MovedFrom is the base image path the entry was saved over, when
	// Relocate rebased it onto this cache's.
	MovedFrom string
}

// Path of a file in the entry.
func (e *Entry) Path(name string) string { return filepath.Join(e.Dir, name) }

// Key hashes the inputs of provisioning into an entry key. Callers pass
// every input whose change must invalidate a provisioned disk.
func Key(parts ...string) string {
	h := sha256.New()
	io.WriteString(h, Format)
	for _, p := range parts {
		fmt.Fprintf(h, "\x00%d:%s", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// DriveKey is key for a guest that keeps a vendor-artifacts drive
// attached (drive: its path, "" none): a saved guest is only resumed with
// the drive it was provisioned with, whose name is a hash of its files and
// format. Verify and instances both key by it.
func DriveKey(key, drive string) string {
	if drive == "" {
		return key
	}
	return Key(key, "artifact-drive", filepath.Base(drive))
}

// Store is the directory of entries, <cache>/provisioned.
type Store struct{ dir string }

// Open returns the store under cacheDir (created).
func Open(cacheDir string) (*Store, error) {
	if cacheDir == "" {
		return nil, errors.New("provisioned.Open: empty cache dir")
	}
	dir := filepath.Join(cacheDir, "provisioned")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	return &Store{dir: dir}, nil
}

// Lookup returns the entry for key when it is complete and can still be
// resumed over base, the base image of this run (the caller resolved it:
// "" if unknown); a broken entry is removed. An entry saved over another
// path than base (the cache was moved or copied; the key, which hashes
// the image's source and digest, says base holds the same image) is kept
// even when its old base is gone: ResumeConfig rebases it.
func (s *Store) Lookup(key, base string) (*Entry, bool) {
	dir := filepath.Join(s.dir, key)
	b, err := os.ReadFile(filepath.Join(dir, FileMeta))
	if err != nil {
		return nil, false
	}
	var m Meta
	if json.Unmarshal(b, &m) != nil || m.Format != Format || m.Key != key {
		_ = os.RemoveAll(dir)
		return nil, false
	}
	for _, f := range entryFiles() {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			_ = os.RemoveAll(dir)
			return nil, false
		}
	}
	if _, err := os.Stat(m.Base); err != nil && (base == "" || absPath(base) == m.Base) {
		// The base image was pruned: the disk's backing file is gone.
		_ = os.RemoveAll(dir)
		return nil, false
	}
	now := time.Now()
	_ = os.Chtimes(filepath.Join(dir, FileMeta), now, now) // last used
	return &Entry{Dir: dir, Meta: m}, true
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// Lock takes the entry's lock (one provisioning per key at a time across
// processes); the returned func releases it.
func (s *Store) Lock(ctx context.Context, key string) (func(), error) {
	l := flock.New(filepath.Join(s.dir, key+".lock"))
	ok, err := l.TryLockContext(ctx, 250*time.Millisecond)
	if err != nil {
		return nil, fmt.Errorf("locking provisioned entry %s: %w", key, err)
	}
	if !ok {
		return nil, fmt.Errorf("locking provisioned entry %s: not acquired", key)
	}
	return func() { _ = l.Unlock() }, nil
}

// Staging is a directory where an entry is assembled before Commit.
type Staging struct {
	store *Store
	Dir   string
}

// Stage creates a staging directory on the store's filesystem (so the
// commit is a rename).
func (s *Store) Stage() (*Staging, error) {
	d, err := os.MkdirTemp(s.dir, ".stage-")
	if err != nil {
		return nil, err
	}
	return &Staging{store: s, Dir: d}, nil
}

// Path of a file in the staging dir.
func (st *Staging) Path(name string) string { return filepath.Join(st.Dir, name) }

// Commit checks the staged files, writes meta.json last and renames the
// staging dir into place (replacing an older entry of the same key).
func (st *Staging) Commit(m Meta) (*Entry, error) {
	for _, f := range entryFiles() {
		if _, err := os.Stat(st.Path(f)); err != nil {
			return nil, fmt.Errorf("committing provisioned entry: %w", err)
		}
	}
	// Renaming the staging dir keeps inodes and mtimes: identify the
	// files here.
	m.Files = map[string]FileID{}
	for _, f := range identified() {
		id, err := identify(st.Path(f), true)
		if err != nil {
			return nil, fmt.Errorf("committing provisioned entry: %w", err)
		}
		m.Files[f] = id
	}
	m.Format = Format
	if m.Created.IsZero() {
		m.Created = time.Now().UTC()
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(st.Path(FileMeta), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	dst := filepath.Join(st.store.dir, m.Key)
	_ = os.RemoveAll(dst)
	if err := os.Rename(st.Dir, dst); err != nil {
		return nil, fmt.Errorf("committing provisioned entry: %w", err)
	}
	return &Entry{Dir: dst, Meta: m}, nil
}

// Abort removes the staging dir.
func (st *Staging) Abort() { _ = os.RemoveAll(st.Dir) }

// List returns the committed entries.
func (s *Store) List() ([]Entry, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, de := range des {
		if !de.IsDir() || de.Name()[0] == '.' {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, de.Name(), FileMeta))
		if err != nil {
			continue
		}
		var m Meta
		if json.Unmarshal(b, &m) == nil {
			out = append(out, Entry{Dir: filepath.Join(s.dir, de.Name()), Meta: m})
		}
	}
	return out, nil
}

// Outdated lists the entries of template saved in another format: this
// version does not resume them (the key differs), and says so rather
// than provisioning silently. `catalog cache prune` removes them.
func (s *Store) Outdated(template string) []Entry {
	all, _ := s.List()
	var out []Entry
	for _, e := range all {
		if e.Meta.Template == template && e.Meta.Format != Format {
			out = append(out, e)
		}
	}
	return out
}
