package qemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// EnvRunRoot overrides the directory under which run dirs are created.
const EnvRunRoot = "GUESTCATALOG_RUNTIME_DIR"

// OwnerFile is the name of the ownership record in every run dir.
const OwnerFile = "owner.json"

// CreatedBy marks owner records written by this package.
const CreatedBy = "guestcatalog"

// Transient files of a run dir (removed by Shutdown).
const (
	QMPSocketName = "qmp.sock"
	PIDFileName   = "qemu.pid"
)

// DefaultRunRoot is where run dirs go when the caller names no root:
// <os.TempDir()>/guestcatalog-<uid>. framework/config prefers
// $GUESTCATALOG_RUNTIME_DIR, then $XDG_RUNTIME_DIR/guestcatalog (RunRootIn).
// All are short, for QEMU's 108-byte limit on the QMP socket path.
func DefaultRunRoot() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("guestcatalog-%d", os.Getuid()))
}

// RunRootIn is the run root under an XDG runtime directory ("" : the
// default).
func RunRootIn(xdgRuntimeDir string) string {
	if xdgRuntimeDir == "" {
		return DefaultRunRoot()
	}
	return filepath.Join(xdgRuntimeDir, "guestcatalog")
}

// Owner is the ownership record of a run dir: who created it (a process
// identified by PID and start time, within one boot) and which QEMU runs
// in it. Gc removes a run dir only when this record proves its owner is
// gone.
type Owner struct {
	CreatedBy string    `json:"createdBy"`
	Name      string    `json:"name,omitempty"`
	Created   time.Time `json:"created"`
	BootID    string    `json:"bootID"`
	PID       int       `json:"pid"`
	PIDStart  uint64    `json:"pidStart"` // /proc/<pid>/stat starttime, clock ticks since boot
	Exe       string    `json:"exe,omitempty"`
	QEMUPID   int       `json:"qemuPID,omitempty"`
	QEMUStart uint64    `json:"qemuStart,omitempty"`
	Cmdline   []string  `json:"cmdline,omitempty"`
}

// RunDir is a private directory for one machine's transient files: the
// QMP socket, the pidfile, owner.json, by default the logs, and whatever
// the caller puts there (an overlay that Gc should remove after a crash).
type RunDir struct {
	path  string
	mu    sync.Mutex
	owner Owner
}

// NewRunDir creates a run dir under root ("" : DefaultRunRoot()) and
// records the calling process as its owner.
func NewRunDir(root, name string) (*RunDir, error) {
	if root == "" {
		root = DefaultRunRoot()
	}
	if err := ensureRoot(root); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(root, "r")
	if err != nil {
		return nil, fmt.Errorf("creating run dir: %w", err)
	}
	self := os.Getpid()
	start, err := procStart(self)
	if err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("reading own start time: %w", err)
	}
	exe, _ := os.Executable()
	r := &RunDir{path: dir, owner: Owner{
		CreatedBy: CreatedBy, Name: name, Created: time.Now().UTC(), BootID: bootID(),
		PID: self, PIDStart: start, Exe: exe,
	}}
	if err := r.write(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return r, nil
}

// Path is the run dir's absolute path.
func (r *RunDir) Path() string { return r.path }

// File returns the path of a file in the run dir.
func (r *RunDir) File(name string) string { return filepath.Join(r.path, name) }

// MemoryFileFor is where the guest RAM of a saveable machine in run dir
// dir is kept: on /dev/shm when there is one (RAM in a file on disk would
// be written back to the disk all along), else in the run dir. Gc removes
// it with the run dir.
func MemoryFileFor(dir string) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		return filepath.Join("/dev/shm", "guestcatalog-"+filepath.Base(dir)+"-ram")
	}
	return filepath.Join(dir, "ram")
}

// Remove deletes the run dir and everything in it.
func (r *RunDir) Remove() error {
	if err := os.RemoveAll(r.path); err != nil {
		return fmt.Errorf("removing run dir: %w", err)
	}
	return nil
}

func (r *RunDir) setQEMU(pid int, argv []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.owner.QEMUPID, r.owner.Cmdline = pid, argv
	r.owner.QEMUStart = 0
	if pid > 0 {
		r.owner.QEMUStart, _ = procStart(pid)
	}
	return r.writeLocked()
}

func (r *RunDir) write() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writeLocked()
}

func (r *RunDir) writeLocked() error {
	b, err := json.MarshalIndent(r.owner, "", "  ")
	if err != nil {
		return err
	}
	tmp := r.File(OwnerFile + ".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", OwnerFile, err)
	}
	if err := os.Rename(tmp, r.File(OwnerFile)); err != nil {
		return fmt.Errorf("writing %s: %w", OwnerFile, err)
	}
	return nil
}

// ReadOwner reads a run dir's owner record.
func ReadOwner(dir string) (Owner, error) {
	var o Owner
	b, err := os.ReadFile(filepath.Join(dir, OwnerFile))
	if err != nil {
		return o, err
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return o, fmt.Errorf("%s: %w", filepath.Join(dir, OwnerFile), err)
	}
	if o.CreatedBy != CreatedBy {
		return o, fmt.Errorf("%s: createdBy is %q, not %q", filepath.Join(dir, OwnerFile), o.CreatedBy, CreatedBy)
	}
	return o, nil
}

// ensureRoot creates the run root, private to this user, and refuses one
// that another user owns or that is a symlink (it may live in /tmp).
func ensureRoot(root string) error {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return fmt.Errorf("creating run root: %w", err)
	}
	fi, err := os.Lstat(root)
	if err != nil {
		return fmt.Errorf("run root: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("run root %s: not a directory", root)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("run root %s: owned by uid %d, not %d; set %s", root, st.Uid, os.Getuid(), EnvRunRoot)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(root, 0o700); err != nil {
			return fmt.Errorf("run root: %w", err)
		}
	}
	return nil
}

// procStat returns the state and start time (clock ticks after boot) of a
// process from /proc/<pid>/stat.
func procStat(pid int) (state byte, start uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) is in parentheses and may contain spaces
	// or parentheses: the fields after it follow the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 {
		return 0, 0, errors.New("short /proc stat")
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, err
	}
	return f[0][0], start, nil
}

func procStart(pid int) (uint64, error) {
	_, st, err := procStat(pid)
	return st, err
}

// processAlive says whether pid is the same live process that started at
// start (a reused PID has another start time; a zombie is dead).
func processAlive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	state, st, err := procStat(pid)
	if err != nil {
		return false
	}
	return st == start && state != 'Z' && state != 'X'
}

func procCmdline(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

func bootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
}
