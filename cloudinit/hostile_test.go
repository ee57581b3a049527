package cloudinit

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
)

// hostileEnvNames are the names issue 10 shows breaking the runner (and
// the other dangerous ones): render refuses each, as validate does.
var hostileEnvNames = []string{"LOG", "STEPS", "MARKER", "PATH", "LD_PRELOAD", "LD_LIBRARY_PATH", "IFS",
	"BASH_ENV", "ENV", "SHELLOPTS", "HOME", "DEBIAN_FRONTEND", "GUESTCATALOG_X", "PARAM_x"}

func TestRenderRefusesReservedEnv(t *testing.T) {
	for _, name := range hostileEnvNames {
		tpl := fixtureAlpine()
		tpl.Env = map[string]string{name: "/tmp/evil"}
		_, err := Render(tpl, testInput(t, catalog.ArchX8664))
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), "env."+name+": "+name+" is reserved: ", name)
	}
}

// TestRunnerNamesAreReserved: every variable the runner assigns is a name a
// template may not set, and the runner sources the template's env only in a
// step's subshell (in_env) or in a user step's login shell (as_user).
func TestRunnerNamesAreReserved(t *testing.T) {
	script := runnerScript("debian-13-x", "gc", []runnerStep{{Name: "01-a"}, {Name: "02-b", User: true}}, packageCheck("debian", []string{"curl"}))
	for _, m := range regexp.MustCompile(`(?m)^\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)=`).FindAllStringSubmatch(script, -1) {
		_, reserved := catalog.ReservedEnv(m[1])
		assert.True(t, reserved, "the runner sets %s: catalog.ReservedEnv must reserve it", m[1])
	}
	assert.Equal(t, 2, strings.Count(script, ". "+EnvPath), "the env is sourced in in_env and as_user only:\n%s", script)
	assert.Contains(t, script, "in_env() {\n\t. "+EnvPath+"\n\texec \"$@\"\n}")
	assert.Contains(t, script, "(in_env \"$STEPS/$1.sh\")")
}

// TestRunnerSurvivesHostileEnv writes an env file that validate and render
// would both refuse (as a guest whose env file was tampered with, or a
// future bug, would have it) and runs the real runner with the host's
// /bin/sh: the runner still logs to its log, runs its steps, and writes its
// marker "ok" where the framework waits for it; no hostile PATH program,
// BASH_ENV or ENV file runs in it; the steps do see the env.
func TestRunnerSurvivesHostileEnv(t *testing.T) {
	root := t.TempDir()
	evil := filepath.Join(root, "evil")
	require.NoError(t, os.MkdirAll(evil, 0o755))
	pwned := filepath.Join(root, "pwned")
	// every program the runner runs, in the hostile PATH: each records it ran
	for _, prog := range []string{"date", "mv", "rm", "tail", "id", "cat", "mkdir", "chmod", "sleep", "systemctl", "loginctl", "runuser", "su", "dpkg-query", "grep"} {
		require.NoError(t, os.WriteFile(filepath.Join(evil, prog), []byte("#!/bin/sh\necho "+prog+" >>"+pwned+"\n"), 0o755))
	}
	hostileRC := filepath.Join(root, "rc.sh")
	require.NoError(t, os.WriteFile(hostileRC, []byte("echo rc >>"+pwned+"\n"), 0o644))

	out := filepath.Join(root, "order")
	tpl := &catalog.Template{
		Name:   "debian-13-hostile",
		Distro: &catalog.Distro{Name: "debian", Family: catalog.FamilyDebian},
		User:   &catalog.User{Name: "root"},
		Provision: []catalog.Step{
			{Mode: catalog.ModeSystem, Description: "one", Script: "echo \"one LOG=$LOG MARKER=$MARKER STEPS=$STEPS\" >>" + out + "\n"},
			{Mode: catalog.ModeSystem, Description: "two", Script: "echo two >>" + out + "\n"},
		},
	}
	_, ud := render(t, tpl, testInput(t, catalog.ArchX8664))
	materialize(t, ud, root)
	hostile := map[string]string{
		EnvUser:      "root",
		"LOG":        filepath.Join(root, "evil-log"),
		"MARKER":     filepath.Join(root, "evil-marker"),
		"STEPS":      filepath.Join(root, "evil-steps"),
		"PATH":       evil,
		"IFS":        "/",
		"LD_PRELOAD": filepath.Join(root, "no-such-evil.so"),
		"BASH_ENV":   hostileRC,
		"ENV":        hostileRC,
		"HOME":       filepath.Join(root, "evil-home"),
		"user_ready": "1",
	}
	require.NoError(t, os.WriteFile(filepath.Join(root, EnvPath), []byte(envFile(hostile)), 0o644))

	cmd := exec.Command("/bin/sh", filepath.Join(root, RunnerPath))
	cmd.Env = append(os.Environ(), "ENV=", "BASH_ENV=")
	output, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", output)

	marker, err := os.ReadFile(filepath.Join(root, MarkerPath))
	require.NoError(t, err, "the runner must write its marker:\n%s", output)
	assert.Equal(t, "ok\n", string(marker))
	log, err := os.ReadFile(filepath.Join(root, LogPath))
	require.NoError(t, err)
	assert.Regexp(t, `(?s)START 01-one .*OK 01-one .*START 02-two .*OK 02-two .*provisioning finished: ok\n$`, string(log))
	order, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, "one LOG="+hostile["LOG"]+" MARKER="+hostile["MARKER"]+" STEPS="+hostile["STEPS"]+"\ntwo\n", string(order),
		"the steps run, in order, and see the template's env")
	assert.NoFileExists(t, pwned, "a program from the hostile PATH, BASH_ENV or ENV ran in the runner")
	assert.NoFileExists(t, hostile["LOG"])
	assert.NoFileExists(t, hostile["MARKER"])
	assert.NotContains(t, string(output), "LD_PRELOAD", "LD_PRELOAD reached the runner's own programs")
}

// TestRenderRefusesLargeSeed: the bound catalog validation applies
// (catalog.MaxSeedBytes over catalog.SeedBytes) is applied by Render too,
// before it builds anything.
func TestRenderRefusesLargeSeed(t *testing.T) {
	tpl := fixtureAlpine()
	big := strings.Repeat("echo x\n", 200_000) // 1.4 MB, 8 times
	for range 8 {
		tpl.Provision = append(tpl.Provision, catalog.Step{Mode: catalog.ModeSystem, Script: big})
	}
	_, err := Render(tpl, testInput(t, catalog.ArchX8664))
	require.Error(t, err)
	assert.Regexp(t, `^rendering seed for alpine-3\.23-podman: the seed would be about \d+ bytes, over the limit of 8388608$`, err.Error())
}

// TestSeedEstimateIsAnUpperBound: catalog.SeedBytes, which validate and
// Render compare with the limit, is not below what Render produces (a
// fixed few KiB aside), for text that YAML must escape or base64-encode.
func TestSeedEstimateIsAnUpperBound(t *testing.T) {
	tricky := fixtureAlpine()
	tricky.Env = map[string]string{"QUOTES": strings.Repeat("'\"$`\\", 2000)}
	tricky.Provision = append(tricky.Provision,
		catalog.Step{Mode: catalog.ModeData, Path: "/etc/bin", Content: strings.Repeat("\xff\x00\x01", 3000)},
		catalog.Step{Mode: catalog.ModeData, Path: "/etc/ctl", Content: strings.Repeat("a\x01\x1b\u2028\n", 3000)},
		catalog.Step{Mode: catalog.ModeData, Path: "/etc/blank", Content: strings.Repeat("\n", 20000)},
		catalog.Step{Mode: catalog.ModeBoot, Script: "echo boot\n"},
		catalog.Step{Mode: catalog.ModeBoot, Script: strings.Repeat("  echo deep\n", 3000)},
	)
	for _, tpl := range []*catalog.Template{fixtureDebianDocker(), fixtureAlpine(), tricky} {
		s, err := Render(tpl, testInput(t, catalog.ArchX8664))
		require.NoError(t, err)
		assert.LessOrEqual(t, int64(len(s.UserData)), catalog.SeedBytes(tpl)+16<<10, tpl.Name)
	}
}
