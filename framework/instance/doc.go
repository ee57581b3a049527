// Package instance runs a template's guest for people to use: resumed from
// the template's saved guest into its own disk, left running after the
// command that started it (Up), entered with Exec and Copy, listed (List)
// and stopped (Down); or disposable (Run: resume, run one command, remove
// everything). An instance's directory in the cache records who owns it
// (QEMU's pid and start time) so that Gc can tell a live instance from a
// leftover one.
package instance
