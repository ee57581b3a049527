// Package exec is the one command abstraction of the framework: a Runner
// runs a Cmd (argv or shell script, stdin, environment, sudo) and returns a
// Result with separate stdout/stderr, the exit code and the duration. Host
// implements it with os/exec; framework/sshx.Client implements it in a guest
// over SSH. A non-zero exit is a *RunError naming the command line.
package exec
