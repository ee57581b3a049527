package instance

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/guestcatalog/guestcatalog/framework/fsutil"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
)

// Format versions instance.json.
const Format = "guestcatalog-instance-v1"

// RecordFile is the record in every instance directory.
const RecordFile = "instance.json"

// States of a record.
const (
	// StateStarting: the directory is reserved and QEMU may be starting;
	// the process doing it is Creator.
	StateStarting = "starting"
	// StateRunning: the guest was ready and left running; QEMU is its
	// owner.
	StateRunning = "running"
)

// Status of an instance, judged from its record and the processes it
// names (Record.Status).
type Status string

const (
	// Running: QEMU (the same process that was recorded) lives.
	Running Status = "running"
	// Starting: the process starting it lives.
	Starting Status = "starting"
	// Dead: what the record names is gone (QEMU killed or crashed, the
	// starting process ended before the guest was ready, or the machine
	// rebooted since). Gc removes it.
	Dead Status = "dead"
)

// Proc names one process for as long as the machine runs: a pid and its
// start time from /proc/<pid>/stat (a reused pid has another start time).
type Proc struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// Alive says whether the process still runs.
func (p Proc) Alive() bool { return p.PID > 0 && qemu.ProcessAlive(p.PID, p.Start) }

// Self is the calling process.
func Self() (Proc, error) {
	pid := os.Getpid()
	st, err := qemu.ProcessStart(pid)
	if err != nil {
		return Proc{}, fmt.Errorf("reading own start time: %w", err)
	}
	return Proc{PID: pid, Start: st}, nil
}

// SSH is how to reach the guest's sshd.
type SSH struct {
	// Addr is host:port on the host's loopback, forwarded to the guest's 22.
	Addr string `json:"addr"`
	User string `json:"user"`
	// Key is the client's private key; KnownHosts pins HostKey for Addr.
	Key        string `json:"key"`
	KnownHosts string `json:"knownHosts"`
	// HostKey is the guest's public host key (authorized_keys format).
	HostKey string `json:"hostKey"`
}

// Record is instance.json.
type Record struct {
	Format   string    `json:"format"`
	Name     string    `json:"name"`
	State    string    `json:"state"`
	Template string    `json:"template"`
	Arch     string    `json:"arch"`
	Accel    string    `json:"accel,omitempty"`
	Created  time.Time `json:"created"`
	// Started is when QEMU started.
	Started time.Time `json:"started,omitzero"`
	BootID  string    `json:"bootID"`
	// Creator is the process that reserved the directory (and, while the
	// state is starting, owns it).
	Creator Proc `json:"creator"`
	// QEMU is the guest's QEMU, its owner once running.
	QEMU      Proc   `json:"qemu,omitzero"`
	QMPSocket string `json:"qmpSocket,omitempty"`
	SSH       SSH    `json:"ssh,omitzero"`
	// RunDir holds the disk, the seed, the keys and QEMU's sockets.
	RunDir string `json:"runDir,omitempty"`
	// Saved is the saved guest it was resumed from.
	Saved string `json:"saved,omitempty"`
	// Mounts are the host directories shared with the guest (the
	// template's and --mount's), as mounted in it (mounts.go).
	Mounts []Mount `json:"mounts,omitempty"`
	// Proxy is the egress proxy helper of a template with egress: proxy
	// (netproxy.go), serving on ProxyAddr; it exits with QEMU.
	Proxy     Proc   `json:"proxy,omitzero"`
	ProxyAddr string `json:"proxyAddr,omitempty"`
}

// Status judges whether what the record names still runs.
func (r *Record) Status() Status {
	if r.BootID != "" && r.BootID != qemu.BootID() {
		return Dead
	}
	switch r.State {
	case StateRunning:
		if r.QEMU.Alive() {
			return Running
		}
	case StateStarting:
		if r.Creator.Alive() {
			return Starting
		}
	}
	return Dead
}

// Uptime is how long QEMU has run.
func (r *Record) Uptime(now time.Time) time.Duration {
	if r.Started.IsZero() {
		return 0
	}
	return now.Sub(r.Started)
}

// ValidName checks an instance name: 1-32 of a-z, 0-9 and '-', not at
// either end (a directory name, a hostname-like label, short enough for
// QEMU's socket path limit).
func ValidName(name string) error {
	ok := len(name) >= 1 && len(name) <= 32 && name[0] != '-' && name[len(name)-1] != '-'
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-'
	}
	if !ok {
		return fmt.Errorf("%w %q: want 1-32 characters of a-z, 0-9 and '-', not starting or ending with '-'", ErrInvalidName, name)
	}
	return nil
}

// ErrInvalidName: not a name an instance can have (ValidName).
var ErrInvalidName = errors.New("invalid instance name")

// ErrExists: an instance of that name exists.
var ErrExists = errors.New("instance exists")

// ErrNotFound: no instance of that name.
var ErrNotFound = errors.New("no such instance")

// Store is the directory of instances, <cache>/instances.
type Store struct{ dir string }

// Open returns the store under cacheDir (created).
func Open(cacheDir string) (*Store, error) {
	if cacheDir == "" {
		return nil, errors.New("instance.Open: empty cache dir")
	}
	dir := filepath.Join(cacheDir, "instances")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	return &Store{dir: dir}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// Path is the directory of the instance name.
func (s *Store) Path(name string) string { return filepath.Join(s.dir, name) }

// reserve creates the instance directory with a starting record owned by
// the calling process, atomically: a directory assembled aside is renamed
// into place, and rename(2) refuses to replace a directory that holds a
// record, so of two reservations of one name exactly one wins.
func (s *Store) reserve(name string, r Record) (string, error) {
	if err := ValidName(name); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(s.dir, ".new-")
	if err != nil {
		return "", err
	}
	r.Format, r.Name, r.State = Format, name, StateStarting
	if err := writeRecord(tmp, &r); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	dst := s.Path(name)
	if err := os.Rename(tmp, dst); err != nil {
		os.RemoveAll(tmp)
		if errors.Is(err, os.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
			return "", fmt.Errorf("%s: %w", name, ErrExists)
		}
		return "", fmt.Errorf("reserving instance %s: %w", name, err)
	}
	return dst, nil
}

// reserveFree reserves base, else base-2, base-3, ...
func (s *Store) reserveFree(base string, r Record) (string, string, error) {
	for i := 1; i < 100; i++ {
		name := base
		if i > 1 {
			suffix := "-" + strconv.Itoa(i)
			if len(base)+len(suffix) > 32 {
				name = base[:32-len(suffix)]
			}
			name += suffix
		}
		dir, err := s.reserve(name, r)
		if err == nil {
			return name, dir, nil
		}
		if !errors.Is(err, ErrExists) {
			return "", "", err
		}
	}
	return "", "", fmt.Errorf("no free instance name for %s", base)
}

func writeRecord(dir string, r *Record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(dir, RecordFile), append(b, '\n'), 0o600)
}

// ReadRecord reads the record of an instance directory.
func ReadRecord(dir string) (*Record, error) {
	b, err := os.ReadFile(filepath.Join(dir, RecordFile))
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, RecordFile), err)
	}
	if r.Format != Format {
		return nil, fmt.Errorf("%s: format %q, want %q", filepath.Join(dir, RecordFile), r.Format, Format)
	}
	if r.Name != filepath.Base(dir) {
		return nil, fmt.Errorf("%s: names instance %q", filepath.Join(dir, RecordFile), r.Name)
	}
	return &r, nil
}

// Get returns the instance name.
func (s *Store) Get(name string) (*Instance, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	dir := s.Path(name)
	r, err := ReadRecord(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return &Instance{Record: *r, Dir: dir}, nil
}

// List returns every instance with a readable record, by name, whatever
// its status.
func (s *Store) List() ([]*Instance, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []*Instance
	for _, de := range des {
		if !de.IsDir() || ValidName(de.Name()) != nil {
			continue
		}
		dir := filepath.Join(s.dir, de.Name())
		r, err := ReadRecord(dir)
		if err != nil {
			continue
		}
		out = append(out, &Instance{Record: *r, Dir: dir})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
