package catalog

import (
	"path"
	"strings"
)

// What the framework owns in the guest: a template may not write there, nor
// set the environment the provisioning runner depends on. One definition,
// used by Validate here and by the seed renderer (package cloudinit), so
// that validate refuses what render refuses.

// Guest paths written by guestcatalog. cloudinit derives its paths (the
// provisioning marker, the env file, the step scripts) from these.
const (
	// GuestStateDir holds the provisioning runner, its step scripts, the
	// boot steps and the provisioning marker.
	GuestStateDir = "/var/lib/guestcatalog"
	// GuestConfigDir holds the environment file of scripts and probes.
	GuestConfigDir = "/etc/guestcatalog"
	// GuestLogPath is the provisioning log.
	GuestLogPath = "/var/log/guestcatalog-provision.log"
)

// ReservedGuestPath reports whether p (a clean absolute path) is, or is
// under, a path guestcatalog writes in the guest: a data step writing the
// provisioning marker could fake a success, one writing the env file or a
// step script could run anything as root.
func ReservedGuestPath(p string) bool {
	p = path.Clean(p)
	for _, dir := range []string{GuestStateDir, GuestConfigDir} {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return p == GuestLogPath || strings.HasPrefix(p, GuestLogPath+".")
}

// ReservedEnv reports whether a template's env may not set name, and why.
// The runner and every step run under /bin/sh as root: these names change
// what a shell runs (PATH, IFS, ENV, BASH_ENV, SHELLOPTS...), what every
// program loads (LD_*), or are the runner's own variables. The runner also
// keeps the template's env out of its own shell (each step sources it in a
// subshell); refusing the names says so to the template's author.
func ReservedEnv(name string) (why string, reserved bool) {
	switch name {
	case "PATH":
		return "it decides which programs the runner and every step run", true
	case "HOME", "SHELL", "USER", "LOGNAME", "PWD", "OLDPWD":
		return "the guest sets it for each user and shell", true
	case "IFS":
		return "it changes how every shell splits words", true
	case "ENV", "BASH_ENV":
		return "a shell sources the file it names", true
	case "SHELLOPTS", "BASHOPTS", "CDPATH", "GLOBIGNORE", "PS4", "POSIXLY_CORRECT":
		return "it changes how every shell of the runner behaves", true
	case "LOG", "MARKER", "STEPS", "DEBIAN_FRONTEND", "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS":
		return "the provisioning runner sets it", true
	}
	switch {
	case strings.HasPrefix(name, "LD_"):
		return "the dynamic linker reads it in every program", true
	case strings.HasPrefix(name, "GUESTCATALOG_"):
		return "guestcatalog sets it", true
	case strings.HasPrefix(name, "PARAM_"):
		return "the PARAM_ prefix is reserved for params", true
	case strings.HasPrefix(name, "BASH_FUNC_"):
		return "bash imports functions from it", true
	}
	return "", false
}
