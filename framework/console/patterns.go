package console

import "regexp"

// Kind classifies a pattern.
type Kind string

// Pattern kinds.
const (
	// Progress marks a boot phase reached (kernel, userspace, login).
	Progress Kind = "progress"
	// Failure means the guest will not get further by itself.
	Failure Kind = "failure"
	// Warning is worth showing but not fatal (TCG guests on a busy host
	// print soft lockups and RCU stalls and carry on).
	Warning Kind = "warning"
)

// Pattern is a named regular expression matched against cleaned console
// lines (no carriage returns, no ANSI escape sequences).
type Pattern struct {
	Name string
	Kind Kind
	Re   *regexp.Regexp
}

// Progress patterns, in boot order.

// KernelStarted() matches the first lines a Linux kernel prints on a
// serial console: the version banner, the EFI stub, or any printk line
// with a timestamp. Firmware output (SeaBIOS, the real-mode
// "Probing EDD" of the boot stub) does not match.
func KernelStarted() Pattern {
	return Pattern{Name: "kernel", Kind: Progress, Re: kernelStartedRE}
}

var kernelStartedRE = regexp.MustCompile(`Linux version \d|Booting Linux|EFI stub: |^\[\s*\d+\.\d{6}\] `)

// Userspace() matches init starting: an initramfs /init, systemd, OpenRC.
func Userspace() Pattern {
	return Pattern{Name: "userspace", Kind: Progress, Re: userspaceRE}
}

var userspaceRE = regexp.MustCompile(`Run /\S*init as init process|systemd\[1\]: |^Welcome to .*!|OpenRC .* is starting up|^INIT: version`)

// LoginPrompt() matches a getty's prompt ("debian login: "), which has no
// newline after it; Watch matches it on the unterminated last line.
func LoginPrompt() Pattern {
	return Pattern{Name: "login", Kind: Progress, Re: loginPromptRE}
}

var loginPromptRE = regexp.MustCompile(`\S login: ?$`)

// CloudInitFinished() matches cloud-init's final message.
func CloudInitFinished() Pattern {
	return Pattern{Name: "cloud-init-finished", Kind: Progress, Re: cloudInitFinishedRE}
}

var cloudInitFinishedRE = regexp.MustCompile(`Cloud-init v\. \S+ finished at`)

// Failure patterns.

// KernelPanic() matches a kernel panic.
func KernelPanic() Pattern {
	return Pattern{Name: "kernel-panic", Kind: Failure, Re: kernelPanicRE}
}

var kernelPanicRE = regexp.MustCompile(`Kernel panic - not syncing`)

// Oops() matches kernel oopses and BUG lines, except "BUG: soft lockup"
// (a Warning: busy TCG hosts print it and the guest carries on).
func Oops() Pattern {
	return Pattern{Name: "oops", Kind: Failure, Re: oopsRE}
}

var oopsRE = regexp.MustCompile(`\bOops: |\bBUG: (?:[^s]|s[^o])`)

// EmergencyMode() matches systemd's emergency shell.
func EmergencyMode() Pattern {
	return Pattern{Name: "emergency-mode", Kind: Failure, Re: emergencyModeRE}
}

var emergencyModeRE = regexp.MustCompile(`You are in emergency mode|Give root password for maintenance|Cannot open access to console, the root account is locked|emergency\.target`)

// RootNotFound() matches a root filesystem that was not found.
func RootNotFound() Pattern {
	return Pattern{Name: "root-not-found", Kind: Failure, Re: rootNotFoundRE}
}

var rootNotFoundRE = regexp.MustCompile(`Gave up waiting for root|ALERT! .* does not exist|VFS: Unable to mount root fs`)

// OOMKill() matches the OOM killer at work.
func OOMKill() Pattern {
	return Pattern{Name: "oom-kill", Kind: Failure, Re: oOMKillRE}
}

var oOMKillRE = regexp.MustCompile(`Out of memory: Killed process|oom-kill:`)

// Warning patterns.

// SoftLockup() matches soft lockups and RCU stalls.
func SoftLockup() Pattern {
	return Pattern{Name: "soft-lockup", Kind: Warning, Re: softLockupRE}
}

var softLockupRE = regexp.MustCompile(`BUG: soft lockup|rcu: INFO: rcu_\w+ (self-)?detected stall|blocked for more than \d+ seconds`)

// ProgressPatterns returns the boot-progress patterns, in boot order.
func ProgressPatterns() []Pattern {
	return []Pattern{KernelStarted(), Userspace(), LoginPrompt(), CloudInitFinished()}
}

// FailurePatterns returns the patterns that mean a boot will not complete.
func FailurePatterns() []Pattern {
	return []Pattern{KernelPanic(), Oops(), EmergencyMode(), RootNotFound(), OOMKill()}
}

// WarningPatterns returns patterns worth reporting that are not fatal.
func WarningPatterns() []Pattern { return []Pattern{SoftLockup()} }

// AllPatterns returns progress, failure and warning patterns.
func AllPatterns() []Pattern {
	p := append(ProgressPatterns(), FailurePatterns()...)
	return append(p, WarningPatterns()...)
}

// Classify returns the pattern that matches a cleaned line: failures
// first, then warnings (each in the order given), then progress patterns,
// of which the last one given wins (patterns are listed in boot order and
// "[ 3.1] Run /init as init process" is userspace, not just kernel).
func Classify(line string, patterns ...Pattern) (Pattern, bool) {
	for _, k := range []Kind{Failure, Warning} {
		for _, p := range patterns {
			if p.Kind == k && p.Re.MatchString(line) {
				return p, true
			}
		}
	}
	for i := len(patterns) - 1; i >= 0; i-- {
		if p := patterns[i]; p.Kind == Progress && p.Re.MatchString(line) {
			return p, true
		}
	}
	return Pattern{}, false
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78cDEHMZ]`)

// Clean removes ANSI escape sequences, carriage returns and other control
// characters (tabs kept) from a console line.
func Clean(line string) string {
	line = ansi.ReplaceAllString(line, "")
	out := make([]byte, 0, len(line))
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c == '\t' || c >= 0x20 && c != 0x7f {
			out = append(out, c)
		}
	}
	return string(out)
}
