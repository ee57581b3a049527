package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func env(kv ...string) Env {
	e := Env{"HOME=/home/u"}
	for i := 0; i+1 < len(kv); i += 2 {
		e = append(e, kv[i]+"="+kv[i+1])
	}
	return e
}

func TestParseBool(t *testing.T) {
	for _, s := range []string{"1", "true", "TRUE", "Yes", " yes "} {
		b, err := ParseBool(s)
		require.NoError(t, err, s)
		require.True(t, b, s)
	}
	for _, s := range []string{"0", "false", "No", "NO"} {
		b, err := ParseBool(s)
		require.NoError(t, err, s)
		require.False(t, b, s)
	}
	for _, s := range []string{"ture", "on", "2", "y"} {
		_, err := ParseBool(s)
		require.Error(t, err, s)
	}
}

func TestFromEnvDefaults(t *testing.T) {
	c, err := FromEnv(env())
	require.NoError(t, err)
	require.Equal(t, "auto", c.Accel)
	require.Equal(t, "/home/u/.cache/guestcatalog", c.CacheDir)
	require.True(t, c.Reuse)
	require.False(t, c.Offline)
	require.Empty(t, c.Templates)
}

func TestFromEnvReadsEveryVariable(t *testing.T) {
	dir := t.TempDir()
	ivals := filepath.Join(dir, "i.yaml")
	require.NoError(t, os.WriteFile(ivals, []byte("intervals:\n  default/wait-ssh: 5m\n"), 0o644))
	c, err := FromEnv(env(
		EnvTemplates, "a, b\nc",
		EnvCatalog, dir+string(filepath.ListSeparator)+dir,
		EnvOffline, "true",
		EnvAccel, "tcg",
		EnvArch, "aarch64",
		EnvTier, "nightly",
		EnvCache, "/c",
		EnvMirrors, "https://a/=http://b/",
		EnvArtifacts, "/art",
		EnvReportDir, "/rep",
		EnvKeepOnFailure, "yes",
		EnvReuse, "no",
		EnvIntervals, ivals,
		EnvFailOnSkip, "1",
		EnvAllowUnpinned, "Yes",
		"GUESTCATALOG_INTERVAL_ENGINE", "9m",
		EnvRunRoot, "/rt",
	))
	require.NoError(t, err)
	require.Equal(t, Config{
		Templates: []string{"a", "b", "c"}, Catalogs: []string{dir, dir}, Offline: true, Accel: "tcg",
		Arch: "aarch64", Tier: "nightly", CacheDir: "/c", Mirrors: []string{"https://a/=http://b/"},
		ArtifactsDir: "/art", ReportDir: "/rep", KeepOnFailure: true, Reuse: false,
		IntervalsFile: ivals, FailOnSkip: true, AllowUnpinned: true, IntervalEnv: map[string]string{"GUESTCATALOG_INTERVAL_ENGINE": "9m"},
		RunRoot: "/rt",
	}, c)
	s, err := c.Intervals()
	require.NoError(t, err)
	require.Equal(t, "9m0s", s.MustGet("engine", "tcg").String())
}

// GUESTCATALOG_ALLOW_UNPINNED is off unless set; empty leaves it off, and
// 0/false/no turn it off.
func TestFromEnvAllowUnpinned(t *testing.T) {
	for v, want := range map[string]bool{"": false, "1": true, "true": true, "YES": true, "0": false, "false": false, "no": false} {
		c, err := FromEnv(env("HOME", "/home/u", EnvAllowUnpinned, v))
		require.NoError(t, err, v)
		require.Equal(t, want, c.AllowUnpinned, "GUESTCATALOG_ALLOW_UNPINNED=%q", v)
	}
	c, err := FromEnv(env("HOME", "/home/u"))
	require.NoError(t, err)
	require.False(t, c.AllowUnpinned, "unset: unpinned downloads are refused")
}

func TestFromEnvCacheDir(t *testing.T) {
	c, err := FromEnv(env("XDG_CACHE_HOME", "/xdg"))
	require.NoError(t, err)
	require.Equal(t, "/xdg/guestcatalog", c.CacheDir)
	_, err = DefaultCacheDir(Env{}.Lookup)
	require.ErrorContains(t, err, "GUESTCATALOG_CACHE")
}

// Every invalid value is named by its variable, all at once.
func TestFromEnvRefuses(t *testing.T) {
	_, err := FromEnv(env(
		EnvOffline, "ture",
		EnvAccel, "kmv",
		EnvArch, "arm64",
		EnvTier, "weekly",
		EnvMirrors, "nonsense",
		EnvIntervals, "/nonexistent/i.yaml",
		EnvCatalog, "/nonexistent/dir",
		EnvReuse, "off",
		EnvAllowUnpinned, "sure",
	))
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		`GUESTCATALOG_OFFLINE: "ture" is not a boolean`,
		`GUESTCATALOG_REUSE: "off" is not a boolean`,
		`GUESTCATALOG_ALLOW_UNPINNED: "sure" is not a boolean`,
		`GUESTCATALOG_ACCEL: "kmv" is not one of auto, kvm, tcg (did you mean "kvm"?)`,
		`GUESTCATALOG_ARCH: "arm64" is not one of x86_64, aarch64`,
		`GUESTCATALOG_TIER: "weekly" is not one of nightly, experimental`,
		`GUESTCATALOG_MIRRORS: `,
		`GUESTCATALOG_INTERVALS: `,
		`GUESTCATALOG_CATALOG: `,
	} {
		require.Contains(t, msg, want)
	}
}

func TestIntervalsFileParseError(t *testing.T) {
	f := filepath.Join(t.TempDir(), "i.yaml")
	require.NoError(t, os.WriteFile(f, []byte("intervals:\n  default/wait-ssh: soon\n"), 0o644))
	_, err := FromEnv(env(EnvIntervals, f))
	require.ErrorContains(t, err, "GUESTCATALOG_INTERVALS")
}

func TestValidateNamesFlags(t *testing.T) {
	c, err := Default(env().Lookup)
	require.NoError(t, err)
	c.Accel = "hvf"
	err = c.Validate(FlagNames)
	require.ErrorContains(t, err, `--accel: "hvf" is not one of auto, kvm, tcg`)
	c.Accel = "auto"
	c.NoBuiltin = true
	require.ErrorContains(t, c.Validate(FlagNames), "--catalog")
}

func TestClosest(t *testing.T) {
	require.Equal(t, "kvm", closest("kmv", Accels()))
	require.Equal(t, "tcg", closest("TCG", Accels()))
	require.Equal(t, "", closest("xen", []string{"auto"}))
	require.True(t, strings.HasPrefix(oneOf("x86", Arches()).Error(), `"x86" is not one of`))
}

func TestIntervalEnvUnknownName(t *testing.T) {
	_, err := FromEnv(env("GUESTCATALOG_INTERVAL_NOPE", "1m"))
	require.ErrorContains(t, err, "GUESTCATALOG_INTERVALS: GUESTCATALOG_INTERVAL_NOPE: no interval has this name")
}
