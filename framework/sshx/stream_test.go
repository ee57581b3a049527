package sshx

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Stream passes the exit code through as a value, not an error, and keeps
// stdout and stderr apart without a terminal.
func TestStreamExitCodeAndStreams(t *testing.T) {
	s := startSSHD(t)
	c := s.dial(t, Options{})
	var out, errb bytes.Buffer
	code, err := c.Stream(context.Background(), "cat; echo err >&2; exit 3", strings.NewReader("from stdin\n"), &out, &errb, nil)
	require.NoError(t, err)
	assert.Equal(t, 3, code)
	assert.Equal(t, "from stdin\n", out.String())
	assert.Equal(t, "err\n", errb.String())

	code, err = c.Stream(context.Background(), "kill -9 $$", nil, nil, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, 137, code)
}

// With a Terminal the remote side has a tty of the asked size; without
// one it has none (the input that makes a PTY-less exec fail `test -t`).
func TestStreamTerminal(t *testing.T) {
	s := startSSHD(t)
	c := s.dial(t, Options{})
	var out bytes.Buffer
	code, err := c.Stream(context.Background(), "test -t 0 && stty size", nil, &out, nil, &Terminal{Width: 101, Height: 33})
	require.NoError(t, err)
	assert.Equal(t, 0, code, out.String())
	assert.Contains(t, out.String(), "33 101")

	out.Reset()
	code, err = c.Stream(context.Background(), "test -t 0", nil, &out, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, 1, code)
}

// An empty line starts the login shell, reading commands from stdin.
func TestStreamLoginShell(t *testing.T) {
	s := startSSHD(t)
	c := s.dial(t, Options{})
	var out bytes.Buffer
	code, err := c.Stream(context.Background(), "", strings.NewReader("echo shell-$((6*7))\nexit 5\n"), &out, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, 5, code)
	assert.Contains(t, out.String(), "shell-42")
}

// Cancelling ctx ends a running command and returns the context error.
func TestStreamCancel(t *testing.T) {
	s := startSSHD(t)
	c := s.dial(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	code, err := c.Stream(ctx, "sleep 30", nil, nil, nil, nil)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, -1, code)
	assert.Less(t, time.Since(start), 5*time.Second)
}
