package exec

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHostStreamsAndExitCode(t *testing.T) {
	h := &Host{}
	var tee bytes.Buffer
	res, err := h.Run(context.Background(), Cmd{Script: "echo out; echo err >&2; exit 3", Stdout: &tee})
	var re *RunError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 3, re.ExitCode)
	assert.Equal(t, 3, ExitCode(err))
	assert.Equal(t, "out\n", string(res.Stdout))
	assert.Equal(t, "err\n", string(res.Stderr))
	assert.Equal(t, "out\n", tee.String())
	assert.Contains(t, err.Error(), "sh -c 'echo out; echo err >&2; exit 3'")
	assert.Contains(t, err.Error(), "exit code 3")
	assert.Contains(t, err.Error(), "stderr:\nerr")
	assert.Greater(t, res.Duration, time.Duration(0))
}

func TestHostStdinEnvDir(t *testing.T) {
	dir := t.TempDir()
	h := &Host{Dir: dir}
	res, err := h.Run(context.Background(), Cmd{
		Script: `pwd; cat; printf '%s' "$GC_TEST"`,
		Stdin:  strings.NewReader("from stdin\n"),
		Env:    map[string]string{"GC_TEST": "a 'b' $c"},
	})
	require.NoError(t, err)
	real, _ := filepath.EvalSymlinks(dir)
	assert.Equal(t, real+"\nfrom stdin\na 'b' $c", string(res.Stdout))
}

func TestHostSignalExitCode(t *testing.T) {
	_, err := (&Host{}).Run(context.Background(), Cmd{Script: "kill -9 $$"})
	assert.Equal(t, 137, ExitCode(err))
}

func TestHostNotFound(t *testing.T) {
	_, err := (&Host{}).Run(context.Background(), Command("/nonexistent/binary", "x"))
	var re *RunError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, -1, re.ExitCode)
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), "/nonexistent/binary x")
}

// TestHostCancelKillsGroup: the context ends a script whose child holds the
// pipes; Run returns promptly and reports the context error.
func TestHostCancelKillsGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := (&Host{}).Run(ctx, Cmd{Script: "sleep 30 & sleep 30; wait"})
	require.Error(t, err)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "err=%v", err)
}

func TestOutputHelpers(t *testing.T) {
	h := &Host{}
	out, err := Output(context.Background(), h, "printf", "a\nb\n\n")
	require.NoError(t, err)
	assert.Equal(t, "a\nb", out)
	lines, err := OutputLines(context.Background(), h, "printf", "a\nb\n")
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, lines)
	out, err = ScriptOutput(context.Background(), h, "echo $((1+2))")
	require.NoError(t, err)
	assert.Equal(t, "3", out)
}

func TestRunErrorTailsStderr(t *testing.T) {
	_, err := (&Host{}).Run(context.Background(), Cmd{Script: "for i in $(seq 1 50); do echo line$i >&2; done; exit 1"})
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, "line50")
	assert.Contains(t, msg, "line41")
	assert.NotContains(t, msg, "line40\n")
}

func TestSameWriterForBothStreams(t *testing.T) {
	var both bytes.Buffer
	_, err := (&Host{}).Run(context.Background(), Cmd{Script: "for i in 1 2 3; do echo o$i; echo e$i >&2; done", Stdout: &both, Stderr: &both})
	require.NoError(t, err)
	for _, s := range []string{"o1", "o3", "e1", "e3"} {
		assert.Contains(t, both.String(), s)
	}
}

func TestInvalidCmd(t *testing.T) {
	_, err := (&Host{}).Run(context.Background(), Cmd{})
	assert.ErrorContains(t, err, "neither Args nor Script")
}

func TestHostMaxOutputStopsTheCommand(t *testing.T) {
	start := time.Now()
	res, err := (&Host{}).Run(context.Background(), Cmd{Args: []string{"sh", "-c", "yes; sleep 60"}, MaxOutput: 4096})
	require.ErrorIs(t, err, ErrOutputLimit)
	assert.Len(t, res.Stdout, 4096)
	assert.Less(t, time.Since(start), 10*time.Second, "the command was stopped")

	res, err = (&Host{}).Run(context.Background(), Cmd{Args: []string{"echo", "short"}, MaxOutput: 4096})
	require.NoError(t, err)
	assert.Equal(t, "short\n", string(res.Stdout))
}
