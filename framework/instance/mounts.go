package instance

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/machine"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
)

// Mount is a host directory shared with an instance over 9p, as the
// instance record keeps it (ps --output json shows it; the isolation suite
// reads it).
type Mount struct {
	// HostPath is the exported host directory (absolute, symlinks
	// resolved).
	HostPath string `json:"hostPath"`
	// GuestPath is where the guest mounts it.
	GuestPath string `json:"guestPath"`
	// Writable: read-write. A read-only mount is refused writes by QEMU
	// (readonly=on), whatever the guest mounts it as.
	Writable bool `json:"writable"`
	// Tag is the 9p mount tag.
	Tag string `json:"tag"`
	// Source: MountFromTemplate or MountFromFlag.
	Source string `json:"source"`
}

// Sources of a Mount.
const (
	// MountFromTemplate: declared by the template (mounts:).
	MountFromTemplate = "template"
	// MountFromFlag: given with --mount (also one that replaces the host
	// directory of a template mount at the same guest path).
	MountFromFlag = "flag"
)

// MaxMountFlags bounds the --mount values of one instance: each is a PCI
// device on the guest's root bus, which has 32 slots for everything.
const MaxMountFlags = 8

// MountSpec is one --mount HOST:GUEST[:ro] value.
type MountSpec struct {
	// HostPath: an existing directory (absolute, clean, symlinks resolved).
	HostPath string
	// GuestPath: absolute and clean, not a guest system directory.
	GuestPath string
	ReadOnly  bool
}

// String is the value as --mount takes it.
func (m MountSpec) String() string {
	s := m.HostPath + ":" + m.GuestPath
	if m.ReadOnly {
		s += ":ro"
	}
	return s
}

// ErrBadMount: a --mount value that cannot be used (ParseMount,
// ParseMounts); the message names the value and says why.
var ErrBadMount = errors.New("invalid --mount")

// guestPathRE is the guest paths a --mount accepts: no space, quote, comma
// or control character, so that the path reads back unchanged from the
// guest's /proc/mounts.
var guestPathRE = regexp.MustCompile(`^/[A-Za-z0-9._@+/-]*$`)

// ParseMount reads one HOST:GUEST[:ro] (or :rw) value. HOST is an
// existing directory, relative to the working directory or absolute; it is
// made absolute and its symlinks are resolved (QEMU would follow them).
// GUEST is an absolute, clean guest path below the system directories. A
// path holding ':' cannot be given (the value would be ambiguous).
func ParseMount(s string) (MountSpec, error) {
	bad := func(f string, a ...any) (MountSpec, error) {
		return MountSpec{}, fmt.Errorf("%w %q: %s", ErrBadMount, s, fmt.Sprintf(f, a...))
	}
	parts := strings.Split(s, ":")
	var m MountSpec
	switch len(parts) {
	case 2:
	case 3:
		switch parts[2] {
		case "ro":
			m.ReadOnly = true
		case "rw":
		default:
			return bad("the third field is %q: want ro or rw (a path holding ':' cannot be mounted)", parts[2])
		}
	case 1:
		return bad("want HOST:GUEST[:ro]")
	default:
		return bad("%d fields: want HOST:GUEST[:ro] (a path holding ':' cannot be mounted)", len(parts))
	}
	host, guest := parts[0], parts[1]
	switch {
	case host == "":
		return bad("the host directory is empty")
	case guest == "":
		return bad("the guest path is empty")
	case !path.IsAbs(guest):
		return bad("the guest path %q is not absolute", guest)
	case path.Clean(guest) != guest:
		return bad("the guest path %q is not clean (no .., //, . or trailing /): %q", guest, path.Clean(guest))
	case !guestPathRE.MatchString(guest):
		return bad("the guest path %q holds a character other than A-Z a-z 0-9 . _ @ + - /", guest)
	case catalog.IsGuestSystemDir(guest):
		return bad("%s is a guest system directory; mount below it (e.g. /mnt/x, /workspace)", guest)
	}
	abs, err := filepath.Abs(host)
	if err != nil {
		return bad("%v", err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return bad("the host directory: %v", unwrapPath(err))
	}
	fi, err := os.Stat(real)
	if err != nil {
		return bad("the host directory: %v", unwrapPath(err))
	}
	if !fi.IsDir() {
		return bad("the host path %s is not a directory", real)
	}
	m.HostPath, m.GuestPath = real, guest
	return m, nil
}

// unwrapPath drops the *PathError's op and path: the message names the
// value already.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}

// ParseMounts parses every --mount value and checks them together: at
// most MaxMountFlags, no guest path given twice, none below another.
func ParseMounts(vals []string) ([]MountSpec, error) {
	if len(vals) > MaxMountFlags {
		return nil, fmt.Errorf("%w: %d values, at most %d", ErrBadMount, len(vals), MaxMountFlags)
	}
	var out []MountSpec
	var errs []error
	for _, v := range vals {
		m, err := ParseMount(v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, o := range out {
			switch {
			case o.GuestPath == m.GuestPath:
				err = fmt.Errorf("%w %q: %s is already mounted by --mount %s", ErrBadMount, v, m.GuestPath, o)
			case within(m.GuestPath, o.GuestPath), within(o.GuestPath, m.GuestPath):
				err = fmt.Errorf("%w %q: %s and %s (--mount %s) nest; mount them side by side", ErrBadMount, v, m.GuestPath, o.GuestPath, o)
			}
			if err != nil {
				break
			}
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, m)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// within says whether p is strictly below dir.
func within(p, dir string) bool { return strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/") }

// Tags and fsdev ids of --mount shares that are not template mounts: apart
// from the template's (cloudinit.MountTag: mount0, mount1, ...).
func flagTag(i int) string { return fmt.Sprintf("xmount%d", i) }
func flagID(i int) string  { return fmt.Sprintf("xfsdev%d", i) }

// CheckHostPaths refuses a --mount whose host directory holds the cache
// (cacheDir: the SSH keys of every instance and saved guest, the saved
// disks) or lies inside it: a guest would read the keys to the other
// guests, or, writable, change the disks they resume from.
func CheckHostPaths(specs []MountSpec, cacheDir string) error {
	if cacheDir == "" {
		return nil
	}
	cache, err := filepath.Abs(cacheDir)
	if err != nil {
		return err
	}
	if r, err := filepath.EvalSymlinks(cache); err == nil {
		cache = r
	}
	var errs []error
	for _, s := range specs {
		if s.HostPath == cache || within(cache, s.HostPath) || within(s.HostPath, cache) {
			errs = append(errs, fmt.Errorf("%w %q: %s and the cache %s overlap (it holds every instance's SSH keys and the saved guests); mount a directory beside it",
				ErrBadMount, s.String(), s.HostPath, cache))
		}
	}
	return errors.Join(errs...)
}

// CheckMounts says whether the --mount values go with the template's own
// mounts (none nests with one; machine.ResolveMounts resolves the
// template's), before anything is provisioned or started.
func CheckMounts(t *catalog.Template, specs []MountSpec) error {
	if len(specs) == 0 || t == nil {
		return nil
	}
	cfg := machine.Config{Template: t}
	_, err := withMounts(&cfg, specs)
	return err
}

// mountPlan is every mount an instance will have, and whether the guest
// must rescan its PCI bus to find a new share's device.
type mountPlan struct {
	Mounts []Mount
	Rescan bool
}

// withMounts applies --mount values to the machine config of a resumed
// guest and returns every mount the instance will have.
//
// A value whose guest path is a template mount's replaces that mount's
// host directory (and its read-only flag): the share's device is in the
// saved guest already, only its host side (-fsdev, not part of the saved
// state) changes. Any other value is a new share, put on QEMU's command
// line after the saved device set: the guest, resumed, does not know the
// device until it rescans its PCI bus (mountGuest). A snapshot cannot gain
// a hot-plugged device instead: QEMU's q35 root bus refuses hotplug
// ("Bus 'pcie.0' does not support hotplugging", QEMU 7.2) and the saved
// guests have no hotpluggable root port.
func withMounts(cfg *machine.Config, specs []MountSpec) (mountPlan, error) {
	t := cfg.Template
	if len(specs) > 0 {
		t = t.DeepCopy()
	}
	tm, err := machine.ResolveMounts(cfg.Template, cfg.Home)
	if err != nil {
		return mountPlan{}, err
	}
	var out []Mount
	replaced := map[int]bool{}
	var extra []MountSpec
	for _, s := range specs {
		hit := -1
		for i, m := range tm {
			switch {
			case m.GuestPath == s.GuestPath:
				hit = i
			case within(m.GuestPath, s.GuestPath), within(s.GuestPath, m.GuestPath):
				return mountPlan{}, fmt.Errorf("%w %q: %s nests with the template's mount at %s; mount it side by side, or at %s to replace that one",
					ErrBadMount, s.String(), s.GuestPath, m.GuestPath, m.GuestPath)
			}
		}
		if hit < 0 {
			extra = append(extra, s)
			continue
		}
		replaced[hit] = true
		t.Mounts[hit].Location = s.HostPath
		t.Mounts[hit].Writable = !s.ReadOnly
	}
	for i, m := range tm {
		src, host, writable := MountFromTemplate, m.HostPath, m.Writable
		if replaced[i] {
			src, host, writable = MountFromFlag, t.Mounts[i].Location, t.Mounts[i].Writable
		}
		out = append(out, Mount{HostPath: host, GuestPath: m.GuestPath, Writable: writable, Tag: m.Tag, Source: src})
	}
	args := []string{}
	for i, s := range extra {
		sh := qemu.Share{Tag: flagTag(i), HostPath: s.HostPath, ReadOnly: s.ReadOnly}
		args = append(args, qemu.ShareArgs(flagID(i), sh)...)
		out = append(out, Mount{HostPath: s.HostPath, GuestPath: s.GuestPath, Writable: !s.ReadOnly, Tag: sh.Tag, Source: MountFromFlag})
	}
	cfg.Template = t
	cfg.ExtraQEMUArgs = append(cfg.ExtraQEMUArgs, args...)
	return mountPlan{Mounts: out, Rescan: len(extra) > 0}, nil
}
