// Package console follows a guest's serial console log while QEMU writes
// it: lines as they arrive, matches of boot-progress and failure patterns
// (kernel started, userspace, login prompt; kernel panic, oops, emergency
// mode, OOM kills), and the last lines of a log for error messages.
package console
