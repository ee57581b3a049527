package exec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// Runner runs commands somewhere: on the host (Host) or in a guest
// (framework/sshx.Client). A command that ran and exited non-zero returns its
// Result together with a *RunError; a command that could not be run at all
// returns a *RunError with ExitCode -1.
type Runner interface {
	Run(ctx context.Context, cmd Cmd) (Result, error)
}

// Cmd is a command for a Runner. Exactly one of Args and Script is set.
type Cmd struct {
	// Args is the argv. Over SSH it is shell-quoted with Join, so every
	// argument arrives unchanged.
	Args []string
	// Script is a shell script run by `sh -c`.
	Script string
	// Stdin, when set, is copied to the command's standard input.
	Stdin io.Reader
	// Env adds variables to the command's environment (names must match
	// [A-Za-z_][A-Za-z0-9_]*). Values are data: they are never evaluated.
	Env map[string]string
	// Sudo runs the command as root with `sudo -n` (never prompts). The
	// host runner skips sudo when it already is root.
	Sudo bool
	// Stdout and Stderr, when set, receive the output while it is produced
	// (it is captured in the Result too).
	Stdout io.Writer
	Stderr io.Writer
}

// Command is a shorthand for Cmd{Args: args}.
func Command(args ...string) Cmd { return Cmd{Args: args} }

// Script is a shorthand for Cmd{Script: script}.
func Script(script string) Cmd { return Cmd{Script: script} }

// Result is what a command produced.
type Result struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int // -1 when the command did not run or did not report one
	Duration time.Duration
}

// RunError is returned when a command exits non-zero or cannot be run.
// errors.As(err, &runErr) gives the command line and its output.
type RunError struct {
	// Cmd is the printable, shell-quoted command line.
	Cmd string
	Result
	// Err is the underlying error (an exit error, a start error, a context
	// error or a lost connection).
	Err error
}

// stderrTailLines is how many lines of stderr RunError.Error shows.
const stderrTailLines = 10

func (e *RunError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "running %s: ", truncate(e.Cmd, 300))
	if e.ExitCode >= 0 {
		fmt.Fprintf(&b, "exit code %d", e.ExitCode)
	} else if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("failed")
	}
	if e.ExitCode >= 0 && e.Err != nil && !isPlainExit(e.Err) {
		fmt.Fprintf(&b, " (%v)", e.Err)
	}
	if tail := TailLines(e.Stderr, stderrTailLines); tail != "" {
		b.WriteString("; stderr:\n")
		b.WriteString(tail)
	}
	return b.String()
}

func (e *RunError) Unwrap() error { return e.Err }

// exitErr marks errors that only repeat the exit code.
type exitErr interface{ ExitCode() int }

func isPlainExit(err error) bool {
	var ee exitErr
	if errors.As(err, &ee) {
		return true
	}
	// x/crypto's *ssh.ExitError has ExitStatus, not ExitCode.
	type exitStatus interface{ ExitStatus() int }
	var es exitStatus
	return errors.As(err, &es)
}

// ExitCode returns the exit code carried by a *RunError in err, or -1.
func ExitCode(err error) int {
	var re *RunError
	if errors.As(err, &re) {
		return re.ExitCode
	}
	return -1
}

// TailLines returns the last n lines of b (without a trailing newline).
func TailLines(b []byte, n int) string {
	s := strings.TrimRight(string(b), "\n")
	if s == "" || n <= 0 {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Validate checks that exactly one of Args and Script is set and that the
// environment names are valid.
func (c Cmd) Validate() error {
	switch {
	case len(c.Args) == 0 && c.Script == "":
		return errors.New("command: neither Args nor Script is set")
	case len(c.Args) > 0 && c.Script != "":
		return errors.New("command: both Args and Script are set")
	case len(c.Args) > 0 && c.Args[0] == "":
		return errors.New("command: Args[0] is empty")
	}
	for _, k := range c.envNames() {
		if !ValidEnvName(k) {
			return fmt.Errorf("command: invalid environment variable name %q", k)
		}
	}
	return nil
}

func (c Cmd) envNames() []string {
	keys := make([]string, 0, len(c.Env))
	for k := range c.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Argv returns the argv of the command without environment or sudo:
// Args, or ["sh", "-c", Script].
func (c Cmd) Argv() []string {
	if c.Script != "" {
		return []string{"sh", "-c", c.Script}
	}
	return c.Args
}

// ShellLine returns the command as one POSIX shell command line, the form a
// remote shell (sshd) runs: `[sudo -n --] [env K='v' ...] argv...`. The
// environment goes through env(1) rather than sshd's AcceptEnv (usually
// restricted) and survives sudo's env_reset.
func (c Cmd) ShellLine() (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	var words []string
	if c.Sudo {
		words = append(words, "sudo", "-n", "--")
	}
	if len(c.Env) > 0 {
		words = append(words, "env")
		for _, k := range c.envNames() {
			words = append(words, Quote(k+"="+c.Env[k]))
		}
	}
	argv := c.Argv()
	if len(words) == 0 {
		return Join(argv), nil
	}
	// After `env NAME=...`, a first argv word containing '=' would be read
	// by env as another assignment: this is what Validate cannot see, so
	// refuse it rather than run something else.
	if len(c.Env) > 0 && strings.Contains(argv[0], "=") {
		return "", fmt.Errorf("command: program name %q contains '=' and cannot follow env assignments", argv[0])
	}
	for _, a := range argv {
		words = append(words, Quote(a))
	}
	return strings.Join(words, " "), nil
}

// String is the printable command line (ShellLine, or a best effort when the
// command is invalid).
func (c Cmd) String() string {
	if s, err := c.ShellLine(); err == nil {
		return s
	}
	return Join(c.Argv())
}

// Output runs argv with r and returns its stdout with trailing newlines
// removed. A non-zero exit is a *RunError.
func Output(ctx context.Context, r Runner, args ...string) (string, error) {
	res, err := r.Run(ctx, Cmd{Args: args})
	return strings.TrimRight(string(res.Stdout), "\n"), err
}

// ScriptOutput runs a shell script with r and returns its stdout with
// trailing newlines removed.
func ScriptOutput(ctx context.Context, r Runner, script string) (string, error) {
	res, err := r.Run(ctx, Cmd{Script: script})
	return strings.TrimRight(string(res.Stdout), "\n"), err
}

// OutputLines runs argv with r and returns the lines of its stdout.
func OutputLines(ctx context.Context, r Runner, args ...string) ([]string, error) {
	out, err := Output(ctx, r, args...)
	if out == "" {
		return nil, err
	}
	return strings.Split(out, "\n"), err
}

// Capture returns the buffers a runner collects stdout and stderr into and
// the writers to hand to the process: the buffers, teeing to cmd.Stdout and
// cmd.Stderr when set. The buffers are safe to read while being written.
func Capture(cmd Cmd) (stdout, stderr *Buffer, outW, errW io.Writer) {
	stdout, stderr = new(Buffer), new(Buffer)
	outW, errW = io.Writer(stdout), io.Writer(stderr)
	teeOut, teeErr := cmd.Stdout, cmd.Stderr
	if teeOut != nil && teeOut == teeErr {
		// Both streams are written concurrently: serialise the shared writer.
		lw := &lockedWriter{w: teeOut}
		teeOut, teeErr = lw, lw
	}
	if teeOut != nil {
		outW = io.MultiWriter(stdout, teeOut)
	}
	if teeErr != nil {
		errW = io.MultiWriter(stderr, teeErr)
	}
	return stdout, stderr, outW, errW
}

// Buffer is a bytes.Buffer safe for one writer and concurrent readers.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// Bytes returns a copy of the content.
func (b *Buffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.b.Bytes())
}

// String returns the content as a string.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
