package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework/report"
)

func TestUsageErrorsExit2(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"unknown command":     {[]string{"lsit"}, `unknown command "lsit" for "catalog" (did you mean list?)`},
		"unknown subcommand":  {[]string{"cache", "lss"}, `unknown command "lss" for "catalog cache" (did you mean ls?)`},
		"unknown images cmd":  {[]string{"images", "chek"}, `unknown command "chek" for "catalog images"`},
		"unknown flag":        {[]string{"list", "--jsno"}, "unknown flag: --jsno"},
		"bad flag value":      {[]string{"verify", "--parallel", "x", "debian-13"}, `invalid argument "x"`},
		"too many args":       {[]string{"show", "a", "b"}, "accepts 1 arg(s), received 2"},
		"unknown template":    {[]string{"show", "nosuch"}, `unknown template "nosuch"`},
		"pull unknown":        {[]string{"pull", "nosuch"}, `unknown template "nosuch"`},
		"render bad arch":     {[]string{"render", "debian-13", "--out", "x", "--arch", "arm"}, `--arch: "arm" is not one of`},
		"verify nothing":      {[]string{"verify"}, "name at least one template"},
		"verify bad set":      {[]string{"verify", "--set", "x", "debian-13"}, `--set "x": want NAME=VALUE`},
		"verify bad parallel": {[]string{"verify", "--parallel", "0", "debian-13"}, "--parallel 0"},
		"verify bad filter":   {[]string{"verify", "--label-filter", "((", "debian-13"}, "--label-filter"},
		"verify missing file": {[]string{"verify", "./nope.yaml"}, "nope.yaml"},
		"no-builtin alone":    {[]string{"--no-builtin", "list"}, "--no-builtin"},
	} {
		t.Run(name, func(t *testing.T) {
			_, errOut, code := runCLIEnv(t, []string{"GUESTCATALOG_CACHE=" + t.TempDir()}, tc.args...)
			assert.Equal(t, ExitUsage, code, errOut)
			assert.Contains(t, errOut, tc.want)
		})
	}
}

func TestGroupCommandAloneShowsHelp(t *testing.T) {
	out, _, code := runCLI(t, "cache")
	assert.Equal(t, ExitOK, code)
	assert.Contains(t, out, "Available Commands")
}

func TestRootHelpDocumentsExitCodes(t *testing.T) {
	out, _, code := runCLI(t, "--help")
	require.Equal(t, ExitOK, code)
	assert.Contains(t, out, "Exit codes:")
	assert.Contains(t, out, "130  interrupted (SIGINT); 143 terminated (SIGTERM)")
	out, _, _ = runCLI(t, "verify", "--help")
	assert.Contains(t, out, "--fail-on-skip")
}

func TestBadEnvironmentExit2(t *testing.T) {
	_, errOut, code := runCLIEnv(t, []string{"GUESTCATALOG_OFFLINE=ture"}, "list")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, errOut, `GUESTCATALOG_OFFLINE: "ture" is not a boolean`)

	// Booleans are not just "1".
	out, _, code := runCLIEnv(t, []string{"GUESTCATALOG_OFFLINE=true", "GUESTCATALOG_CACHE=" + t.TempDir()}, "pull", "ubuntu-24.04")
	assert.Equal(t, ExitFailed, code)
	assert.Contains(t, out, "offline")
}

// verify checks every flag, environment value and template before it
// downloads, builds or boots anything: a mistake ends it at once, exit 2,
// with nothing in the cache.
func TestVerifyRefusesBadInputUpFront(t *testing.T) {
	for name, tc := range map[string]struct {
		env  []string
		args []string
		want string
	}{
		"accel typo":     {nil, []string{"verify", "--accel", "kmv", "debian-docker"}, `--accel: "kmv" is not one of auto, kvm, tcg (did you mean "kvm"?)`},
		"accel hvf":      {nil, []string{"verify", "--accel", "hvf", "debian-docker"}, `--accel: "hvf" is not one of auto, kvm, tcg`},
		"accel from env": {[]string{"GUESTCATALOG_ACCEL=kmv"}, []string{"verify", "debian-docker"}, `--accel: "kmv"`},
		"unknown name":   {nil, []string{"verify", "nosuch"}, `unknown template "nosuch"`},
		"arch":           {nil, []string{"verify", "--arch", "riscv64", "debian-docker"}, `--arch: "riscv64"`},
		"tier":           {nil, []string{"verify", "--all", "--tier", "weekly"}, `--tier: "weekly"`},
		"intervals":      {nil, []string{"verify", "--intervals", "/nonexistent.yaml", "debian-docker"}, "--intervals"},
		"mirror":         {nil, []string{"verify", "--mirror", "nonsense", "debian-docker"}, "--mirror"},
		"param":          {nil, []string{"verify", "--set", "nope=1", "debian-docker"}, "nope"},
		"all and names":  {nil, []string{"verify", "--all", "debian-docker"}, "--all verifies every template"},
	} {
		t.Run(name, func(t *testing.T) {
			cache := t.TempDir()
			art := t.TempDir()
			start := time.Now()
			_, errOut, code := runCLIEnv(t, append([]string{"GUESTCATALOG_CACHE=" + cache, "ARTIFACTS=" + art}, tc.env...), tc.args...)
			took := time.Since(start)
			assert.Equal(t, ExitUsage, code, errOut)
			assert.Contains(t, errOut, tc.want)
			assert.Less(t, took, time.Second)
			for _, dir := range []string{cache, art} {
				entries, err := os.ReadDir(dir)
				require.NoError(t, err)
				assert.Empty(t, entries, "nothing downloaded, built or booted")
			}
		})
	}
}

func TestIsPath(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "t")
	require.NoError(t, os.WriteFile(f, nil, 0o644))
	for _, p := range []string{"./t.yaml", "t.yml", "/abs/x", "../x", ".", f, dir} {
		assert.True(t, isPath(p), p)
	}
	for _, n := range []string{"debian-13-docker", "images/debian-13", "engines/docker"} {
		assert.False(t, isPath(n), n)
	}
	assert.False(t, strings.Contains("x", "/"))
}

func TestCompletionSeesUserCatalogs(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "t.yaml"), []byte(`apiVersion: guestcatalog.dev/v1alpha1
kind: Template
name: team-thing
base: [images/debian-13]
`), 0o644))
	out, _, code := runCLIEnv(t, []string{"GUESTCATALOG_CATALOG=" + dir}, "__complete", "verify", "team-")
	require.Equal(t, ExitOK, code)
	assert.Contains(t, out, "team-thing\n")
	out, _, _ = runCLI(t, "__complete", "show", "debian-13-c")
	assert.Contains(t, out, "debian-13-containerd\n")
}

func TestVerdictFailOnSkip(t *testing.T) {
	skipped := []*report.Template{{Template: "a", Result: report.Skip}, {Template: "b", Result: report.Skip}}
	mixed := []*report.Template{{Template: "a", Result: report.Skip}, {Template: "b", Result: report.Pass}}
	assert.NoError(t, verdict(true, skipped, false), "all SKIPPED exits 0 by default")
	assert.Equal(t, exitError{ExitFailed}, verdict(true, skipped, true), "--fail-on-skip")
	assert.NoError(t, verdict(true, mixed, true), "one ran: not all skipped")
	assert.Equal(t, exitError{ExitFailed}, verdict(false, mixed, false))
}
