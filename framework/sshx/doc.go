// Package sshx is guest access over SSH (golang.org/x/crypto/ssh): per-run
// client keys, a guest host key generated on the host and pinned on connect,
// readiness dialing (WaitDial), an exec.Runner with separate streams and exit
// codes, file transfer over `cat` (no sftp), a keepalive that closes a dead
// connection so waits fail fast, and a pasteable, pinned `ssh` command line.
package sshx
