package cloudinit

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/guestcatalog/guestcatalog/framework/exec"
)

// envFile renders vars as `export NAME=value` lines, sorted by name, with
// GUESTCATALOG_USER first. Each value is one shell word (exec.Quote: plain
// when made of characters no shell treats specially, single-quoted
// otherwise), so a value is data to every POSIX shell, never code.
func envFile(vars map[string]string) string {
	var b strings.Builder
	b.WriteString("# guestcatalog: environment of the provisioning scripts and probes.\n")
	b.WriteString("# Generated; values are data, quoted for POSIX sh.\n")
	for _, name := range envNames(vars) {
		fmt.Fprintf(&b, "export %s=%s\n", name, exec.Quote(vars[name]))
	}
	return b.String()
}

// envNames sorts names with GUESTCATALOG_USER first, for stable output.
func envNames(vars map[string]string) []string {
	names := make([]string, 0, len(vars))
	for name := range vars {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == EnvUser) != (names[j] == EnvUser) {
			return names[i] == EnvUser
		}
		return names[i] < names[j]
	})
	return names
}

var slugDrop = regexp.MustCompile(`[^a-z0-9]+`)

// slug makes a file-name part from a step description: lowercase letters,
// digits and single dashes, at most 40 characters; fallback if empty.
func slug(description, fallback string) string {
	s := slugDrop.ReplaceAllString(strings.ToLower(description), "-")
	s = strings.Trim(s, "-")
	if len(s) > 40 {
		s = strings.TrimRight(s[:40], "-")
	}
	if s == "" {
		return fallback
	}
	return s
}

// scriptText gives a step script a first line: its own `#!` line when it has
// one, else `#!/bin/sh` followed by `set -e`, so that a failing command
// fails the step.
func scriptText(script string) string {
	if !strings.HasPrefix(script, "#!") {
		script = "#!/bin/sh\nset -e\n" + script
	}
	if !strings.HasSuffix(script, "\n") {
		script += "\n"
	}
	return script
}

// bootCommand is one bootcmd entry: a subshell that exports the template
// environment, writes the step's script to BootDir (through a quoted
// here-document: no expansion, and the script stays readable in user-data)
// and runs it with stdin on /dev/null. A failing boot step stops the
// remaining ones and fails cloud-init's bootcmd module.
func bootCommand(name, script string, vars map[string]string) string {
	script = scriptText(script)
	delim := "GUESTCATALOG_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	for strings.Contains("\n"+script, "\n"+delim+"\n") {
		delim += "_"
	}
	file := BootDir + "/" + name + ".sh"
	var b strings.Builder
	fmt.Fprintf(&b, "( # guestcatalog boot step %s\n", name)
	for _, n := range envNames(vars) {
		fmt.Fprintf(&b, "export %s=%s\n", n, exec.Quote(vars[n]))
	}
	fmt.Fprintf(&b, "mkdir -p %s\n", BootDir)
	fmt.Fprintf(&b, "cat >%s <<'%s'\n%s%s\n", file, delim, script, delim)
	fmt.Fprintf(&b, "chmod 0755 %s\n", file)
	fmt.Fprintf(&b, "exec %s\n", file)
	b.WriteString(") </dev/null || exit $?\n")
	return b.String()
}

// runnerStep is one line of the runner: a script step and who runs it.
type runnerStep struct {
	Name string // NN-slug, also the script's file name without .sh
	User bool
}

// runnerScript renders run.sh. It runs the steps in order (system steps as
// root, user steps as the template user with a login environment, through
// the first of runuser, su, sudo, doas and busybox su the guest has: Alpine
// has no runuser), logs each with UTC timestamps to LogPath, stops at the
// first failure and leaves the outcome in MarkerPath.
func runnerScript(template, user string, steps []runnerStep, pkgCheck string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `#!/bin/sh
# guestcatalog provisioning runner for template %s (generated).
# Runs the template's steps in order: system steps as root, user steps as
# %s. The first failure stops the run. Each step's output goes to
# %s; the outcome goes to %s:
# "ok", or "failed: <step> exit <code>" (and this script then exits non-zero,
# so that cloud-init reports an error).
umask 022
cd /
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
HOME=${HOME:-/root}
DEBIAN_FRONTEND=noninteractive
export PATH HOME DEBIAN_FRONTEND
LOG=%s
MARKER=%s
STEPS=%s
. %s

log() {
	line="$(date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ) $*"
	printf '%%s\n' "$line" >>"$LOG"
	printf 'guestcatalog: %%s\n' "$line"
}

finish() {
	printf '%%s\n' "$1" >"$MARKER.tmp" && mv -f "$MARKER.tmp" "$MARKER"
}

fail() {
	log "FAILED $1 (exit $2)"
	echo "guestcatalog: last lines of $LOG:" >&2
	tail -n 40 "$LOG" >&2
	finish "failed: $1 exit $2"
	exit "$2"
}

# The user's systemd manager (user@UID.service) is started once, lazily, so
# that user steps can use systemctl --user, XDG_RUNTIME_DIR and the session
# bus; the wait is bounded.
user_ready=
prepare_user() {
	[ -n "$user_ready" ] && return 0
	user_ready=1
	if [ -d /run/systemd/system ] && command -v loginctl >/dev/null 2>&1; then
		uid=$(id -u "$GUESTCATALOG_USER")
		loginctl enable-linger "$GUESTCATALOG_USER" >>"$LOG" 2>&1 || log "warning: loginctl enable-linger $GUESTCATALOG_USER failed"
		i=0
		until systemctl is-active --quiet "user@$uid.service"; do
			i=$((i + 1))
			if [ "$i" -gt 30 ]; then
				log "warning: user@$uid.service is not active after 30s"
				break
			fi
			sleep 1
		done
	fi
}

as_user() {
	cmd='. %s; uid=$(id -u); if [ -d "/run/user/$uid" ]; then XDG_RUNTIME_DIR="/run/user/$uid"; export XDG_RUNTIME_DIR; if [ -S "/run/user/$uid/bus" ]; then DBUS_SESSION_BUS_ADDRESS="unix:path=/run/user/$uid/bus"; export DBUS_SESSION_BUS_ADDRESS; fi; fi; exec '"$1"
	if command -v runuser >/dev/null 2>&1; then
		runuser -l "$GUESTCATALOG_USER" -c "$cmd"
	elif command -v su >/dev/null 2>&1; then
		su -l "$GUESTCATALOG_USER" -c "$cmd"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -i -u "$GUESTCATALOG_USER" sh -c "$cmd"
	elif command -v doas >/dev/null 2>&1; then
		doas -u "$GUESTCATALOG_USER" sh -c "cd && $cmd"
	else
		busybox su -l "$GUESTCATALOG_USER" -c "$cmd"
	fi
}

run_step() {
	log "START $1 ($2)"
	start=$(date +%%s)
	if [ "$2" = user ]; then
		prepare_user
		as_user "$STEPS/$1.sh" </dev/null >>"$LOG" 2>&1
	else
		"$STEPS/$1.sh" </dev/null >>"$LOG" 2>&1
	fi
	rc=$?
	[ "$rc" -eq 0 ] || fail "$1" "$rc"
	log "OK $1 ($(($(date +%%s) - start))s)"
}

rm -f "$MARKER"
log "provisioning template %s"
`, template, user, LogPath, MarkerPath,
		LogPath, MarkerPath, ProvisionDir, EnvPath, EnvPath, template)
	if pkgCheck != "" {
		b.WriteString(pkgCheck)
	}
	for _, s := range steps {
		mode := "system"
		if s.User {
			mode = "user"
		}
		fmt.Fprintf(&b, "run_step %s %s\n", s.Name, mode)
	}
	b.WriteString("finish ok\nlog \"provisioning finished: ok\"\n")
	return b.String()
}

// packageCheck renders the runner's first step: every package the template
// installs through cloud-init (or baked into the image) must be installed,
// because cloud-init carries on with runcmd after its package module fails.
func packageCheck(family string, packages []string) string {
	if len(packages) == 0 {
		return ""
	}
	var probe string
	switch family {
	case "debian":
		probe = `dpkg-query -W -f='${Status}' "${1%%[=/]*}" 2>/dev/null | grep -q ' installed$'`
	case "alpine":
		probe = `apk info -e "${1%%[=<>~]*}" >/dev/null 2>&1`
	case "arch":
		probe = `pacman -Q "${1%%[=<>]*}" >/dev/null 2>&1 || pacman -Qg "$1" >/dev/null 2>&1`
	default: // rhel, suse
		probe = `case "$1" in @*) return 0 ;; esac; rpm -q --whatprovides "$1" >/dev/null 2>&1`
	}
	quoted := make([]string, len(packages))
	for i, p := range packages {
		quoted[i] = exec.Quote(p)
	}
	return fmt.Sprintf(`
installed() { %s; }
log "START packages (check)"
missing=
for p in %s; do
	installed "$p" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	log "packages not installed:$missing (see /var/log/cloud-init.log)"
	fail packages 1
fi
log "OK packages"
`, probe, strings.Join(quoted, " "))
}
