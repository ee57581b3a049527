// Package isolation checks, from inside a running guest and with host-side
// canaries, that a template isolates what it says: only its declared mounts
// (read-only ones read-only on the host side, symlinks not followed by the
// host), no path to the host's loopback or the metadata address, egress as
// its network policy declares (also after guest root flushes its firewall),
// no forwarded credentials, no canary token anywhere in the guest, the
// declared CPUs and memory, a disk that fills to ENOSPC at its declared
// size with the host overlay within it, resumes of one saved guest that do
// not share random state, and nothing left on the host after close. The
// guest is one a verify run booted (FromMachine) or an instance left
// running by `catalog up` (FromInstance).
//
// The checks run over framework/exec.Runner (the guest's SSH client) and
// return a Profile: one Result per property, held, not held or skipped, with
// the evidence. They never assert: suites/specs turns a profile into specs,
// failing a template that declares isolation: strict.
package isolation
