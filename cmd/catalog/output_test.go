package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every command that prints data takes --output json|yaml, and both parse.
func TestOutputFormatsParse(t *testing.T) {
	cache := t.TempDir()
	for _, args := range [][]string{
		{"list"}, {"show", "debian-docker"}, {"validate"}, {"cache", "ls"}, {"gc", "--run-root", t.TempDir()},
		{"doctor", "--no-probe"}, {"version"},
	} {
		for _, f := range []string{"json", "yaml"} {
			if args[0] == "show" && f == "yaml" {
				continue // show's YAML: TestShowByAlias
			}
			t.Run(strings.Join(args, "_")+"/"+f, func(t *testing.T) {
				out, errOut, code := runCLI(t, append(append([]string{"--cache-dir", cache}, args...), "--output", f)...)
				if args[0] != "doctor" { // doctor exits 1 on a host without an accelerator
					require.Equal(t, ExitOK, code, errOut)
				}
				var v any
				if f == "json" {
					require.NoError(t, json.Unmarshal([]byte(out), &v), out)
				} else {
					require.NoError(t, yaml.Unmarshal([]byte(out), &v), out)
				}
				assertCamelCase(t, v)
			})
		}
	}
}

// assertCamelCase fails on a key that starts with an upper-case letter
// (gc --json printed Root, DryRun, Removed, Kept).
func assertCamelCase(t *testing.T, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if k != "" && k[0] >= 'A' && k[0] <= 'Z' {
				t.Errorf("key %q is not camelCase", k)
			}
			assertCamelCase(t, e)
		}
	case []any:
		for _, e := range v {
			assertCamelCase(t, e)
		}
	}
}

func TestGcJSONCamelCase(t *testing.T) {
	out, _, code := runCLI(t, "gc", "--run-root", t.TempDir(), "-o", "json")
	require.Equal(t, ExitOK, code)
	assert.Contains(t, out, `"dryRun": false`)
	assert.NotContains(t, out, `"DryRun"`)
}

func TestJSONAliasDeprecated(t *testing.T) {
	out, errOut, code := runCLI(t, "list", "--json")
	require.Equal(t, ExitOK, code)
	var v []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &v), "the notice stays off stdout")
	assert.Contains(t, errOut, "--json is deprecated, use --output json")

	_, errOut, code = runCLI(t, "list", "--json", "-o", "yaml")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, errOut, "--json and --output yaml: choose one")

	_, errOut, code = runCLI(t, "cache", "ls", "-o", "csv")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, errOut, `--output "csv": want table, json or yaml`)

	_, errOut, code = runCLI(t, "show", "debian-docker", "-o", "table")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, errOut, `--output "table": want yaml or json`)
}

func TestValidateJSONProblems(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`apiVersion: guestcatalog.dev/v1alpha1
kind: Template
name: bad
description: a step with a mode that does not exist
base: [images/debian-13, engines/containerd]
provision:
  - mode: script
    script: "true"
`), 0o644))
	out, errOut, code := runCLI(t, "validate", "-o", "json", file)
	assert.Equal(t, ExitUsage, code, errOut)
	var rep validationReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	require.Equal(t, 1, rep.Failed, out)
	var got *validationProblem
	for _, r := range rep.Results {
		for i, p := range r.Problems {
			if p.Severity == "error" {
				got = &r.Problems[i]
			}
		}
	}
	require.NotNil(t, got, out)
	assert.Equal(t, validationProblem{File: file, Line: 7, Column: 11, Field: "provision[0].mode",
		Message: `must be one of system, user, boot, data, packages, not "script"`, Severity: "error"}, *got)
}

// verify's output flags are checked up front (exit 2, nothing runs).
func TestVerifyOutputFlagsChecked(t *testing.T) {
	for args, want := range map[string]string{
		"-o yaml": `--output "yaml": want table or json`,
		"-q -v":   "-q and -v: choose one",
	} {
		_, errOut, code := runCLIEnv(t, []string{"GUESTCATALOG_CACHE=" + t.TempDir()}, append([]string{"verify", "debian-13"}, strings.Fields(args)...)...)
		assert.Equal(t, ExitUsage, code, args)
		assert.Contains(t, errOut, want, args)
	}
}
