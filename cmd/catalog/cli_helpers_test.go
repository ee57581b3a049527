package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// runCLI runs the catalog command in-process with args, a fresh command
// tree each time (nothing to reset), the process environment minus the
// GUESTCATALOG_* variables plus env (KEY=VALUE). code is the exit code.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runCLIEnv(t, nil, args...)
}

func runCLIEnv(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(context.Background(), args, IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, testEnv(env...))
	return out.String(), errOut.String(), code
}

// testEnv is the process environment without GUESTCATALOG_* (a developer's
// settings must not change test results), then extra.
func testEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GUESTCATALOG_") || strings.HasPrefix(kv, "GUESTCATALOG_CACHE=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}
