package sshx

import (
	"context"
	"fmt"
	"io"

	"golang.org/x/crypto/ssh"
)

// Terminal asks Stream for a pseudo-terminal in the guest, as `ssh -t`
// does when the caller's stdin is a terminal.
type Terminal struct {
	// Term is the TERM value ("" : xterm).
	Term string
	// Width and Height in characters (0 : 80x24).
	Width, Height int
	// Resize delivers the caller's window size changes (nil : none).
	Resize <-chan WindowSize
}

// WindowSize is a terminal's size in characters.
type WindowSize struct{ Width, Height int }

// Stream runs line (a shell command line, as exec.Cmd.ShellLine gives;
// "" starts the user's login shell) with the caller's streams attached and
// returns the remote exit status (128+n when a signal n ended it). stdin
// (nil: none) is copied until EOF, which closes the remote stdin. With a
// terminal the guest side gets a PTY, so stdout and stderr arrive merged
// on stdout and the caller should put its own terminal in raw mode. When
// ctx ends the remote command gets SIGKILL and Stream returns ctx's error.
// A non-zero status is not an error: err is for what kept the command
// from running or from reporting its status.
func (c *Client) Stream(ctx context.Context, line string, stdin io.Reader, stdout, stderr io.Writer, term *Terminal) (int, error) {
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	var setup []func(*ssh.Session) error
	if term != nil {
		setup = append(setup, func(s *ssh.Session) error {
			t, w, h := term.Term, term.Width, term.Height
			if t == "" {
				t = "xterm"
			}
			if w <= 0 || h <= 0 {
				w, h = 80, 24
			}
			if err := s.RequestPty(t, h, w, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
				return fmt.Errorf("requesting a pty: %w", err)
			}
			if term.Resize != nil {
				go func() {
					for ws := range term.Resize {
						if s.WindowChange(ws.Height, ws.Width) != nil {
							return
						}
					}
				}()
			}
			return nil
		})
	}
	code, err := c.session(ctx, line, stdin, stdout, stderr, setup...)
	if err != nil && code >= 0 {
		// An *ssh.ExitError: the command ran and said how it ended.
		return code, nil
	}
	return code, err
}
