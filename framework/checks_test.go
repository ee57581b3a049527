package framework

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
	gexec "github.com/guestcatalog/guestcatalog/framework/exec"
)

func ptr[T any](v T) *T { return &v }

// result is what a guest command returns: a RunError for a non-zero exit.
func result(code int, stdout, stderr string) (gexec.Result, error) {
	res := gexec.Result{ExitCode: code, Stdout: []byte(stdout), Stderr: []byte(stderr)}
	if code == 0 {
		return res, nil
	}
	return res, &gexec.RunError{Cmd: "x", Result: res, Err: errors.New("exit status")}
}

func TestEvaluateCheck(t *testing.T) {
	hello := catalog.Check{Name: "hello greets", Run: "hello", Stdout: &catalog.Expect{Contains: "Hello"}}
	for name, tc := range map[string]struct {
		check  catalog.Check
		code   int
		stdout string
		stderr string
		want   []string // "" = passes
	}{
		"passes":          {hello, 0, "Hello, world\n", "", nil},
		"exit code":       {hello, 3, "Hello\n", "boom\n", []string{`check "hello greets" failed: exit code: expected 0, got 3`, `stderr was: "boom\n"`}},
		"expected exit":   {catalog.Check{Name: "false fails", Run: "false", ExitCode: ptr(1)}, 1, "", "", nil},
		"wrong nonzero":   {catalog.Check{Name: "e", Run: "x", ExitCode: ptr(2)}, 0, "", "", []string{"exit code: expected 2, got 0"}},
		"contains":        {hello, 0, "Goodbye\n", "", []string{`stdout: expected output that contains "Hello", got "Goodbye\n"`}},
		"equals passes":   {catalog.Check{Name: "eq", Run: "x", Stdout: &catalog.Expect{Equals: ptr("ok")}}, 0, "ok\n", "", nil},
		"equals":          {catalog.Check{Name: "eq", Run: "x", Stdout: &catalog.Expect{Equals: ptr("ok")}}, 0, "ok then\n", "", []string{`stdout: expected output that equals "ok", got "ok then\n"`}},
		"equals empty":    {catalog.Check{Name: "quiet", Run: "x", Stderr: &catalog.Expect{Equals: ptr("")}}, 0, "", "warning\n", []string{`stderr: expected output that equals "", got "warning\n"`}},
		"regex passes":    {catalog.Check{Name: "re", Run: "x", Stdout: &catalog.Expect{Regex: `^v\d+\.\d+`}}, 0, "v1.7.2\n", "", nil},
		"regex":           {catalog.Check{Name: "re", Run: "x", Stdout: &catalog.Expect{Regex: `^v\d+\.\d+`}}, 0, "1.7\n", "", []string{"stdout: expected output that matches /^v\\d+\\.\\d+/, got \"1.7\\n\""}},
		"stderr contains": {catalog.Check{Name: "se", Run: "x", Stderr: &catalog.Expect{Contains: "denied"}}, 1, "", "ok\n", []string{"exit code: expected 0, got 1", `stderr: expected output that contains "denied", got "ok\n"`}},
	} {
		t.Run(name, func(t *testing.T) {
			res, runErr := result(tc.code, tc.stdout, tc.stderr)
			err := EvaluateCheck(tc.check, res, runErr)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestEvaluateCheckCommandDidNotRun(t *testing.T) {
	c := catalog.Check{Name: "hello greets", Run: "hello"}
	err := EvaluateCheck(c, gexec.Result{ExitCode: -1}, errors.New("ssh: connection lost"))
	require.EqualError(t, err, `check "hello greets": the command did not run: ssh: connection lost`)
	err = EvaluateCheck(c, gexec.Result{ExitCode: -1}, &gexec.RunError{Cmd: "x", Result: gexec.Result{ExitCode: -1}, Err: errors.New("context deadline exceeded")})
	require.ErrorContains(t, err, "the command did not run")
}

func TestEvaluateCheckLongOutputIsCut(t *testing.T) {
	c := catalog.Check{Name: "c", Run: "x", Stdout: &catalog.Expect{Contains: "needle"}}
	err := EvaluateCheck(c, gexec.Result{Stdout: []byte(strings.Repeat("hay ", 10000))}, nil)
	require.ErrorContains(t, err, "(last 2000 of 40000 bytes)")
}
