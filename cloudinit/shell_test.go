package cloudinit

import (
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
	gcexec "github.com/guestcatalog/guestcatalog/framework/exec"
)

func TestSlug(t *testing.T) {
	assert.Equal(t, "install-docker-rootless", slug("Install Docker (rootless)!", "system"))
	assert.Equal(t, "user", slug("  ", "user"))
	assert.Equal(t, "user", slug("äöü", "user"))
	long := slug(strings.Repeat("abc ", 30), "x")
	assert.LessOrEqual(t, len(long), 40)
	assert.False(t, strings.HasSuffix(long, "-"))
}

// shells returns the POSIX shells on this host to run generated scripts with:
// /bin/sh always; dash, bash and busybox sh when installed.
func shells(t *testing.T) [][]string {
	out := [][]string{{"/bin/sh"}}
	for _, name := range []string{"dash", "bash"} {
		if p, err := exec.LookPath(name); err == nil {
			out = append(out, []string{p})
		}
	}
	if p, err := exec.LookPath("busybox"); err == nil {
		out = append(out, []string{p, "sh"})
	}
	return out
}

// materialize writes user-data's write_files under root, with every guest
// path rewritten to lie under root too, so the generated scripts run on the
// host against a private tree. The user's systemd manager is never touched.
func materialize(t *testing.T, ud map[string]any, root string) {
	t.Helper()
	rewrite := strings.NewReplacer(
		"/var/lib/guestcatalog", root+"/var/lib/guestcatalog",
		"/etc/guestcatalog", root+"/etc/guestcatalog",
		"/var/log/guestcatalog-provision.log", root+"/var/log/guestcatalog-provision.log",
		"/run/systemd/system", root+"/no-systemd",
	)
	for path, f := range writeFiles(t, ud) {
		content := f["content"].(string)
		if f["encoding"] == "b64" {
			b, err := base64.StdEncoding.DecodeString(content)
			require.NoError(t, err)
			content = string(b)
		}
		perm := os.FileMode(0o644)
		if p, ok := f["permissions"].(string); ok {
			n, err := strconv.ParseUint(p, 8, 32)
			require.NoError(t, err)
			perm = os.FileMode(n)
		}
		dst := filepath.Join(root, path)
		require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
		require.NoError(t, os.WriteFile(dst, []byte(rewrite.Replace(content)), perm))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(root, "var/log"), 0o755))
}

// TestEnvFileValuesAreData renders hostile param values, then sources the
// env file from user-data with every shell on the host and checks that
// nothing ran and every value came back byte for byte.
func TestEnvFileValuesAreData(t *testing.T) {
	dir := t.TempDir()
	pwned := filepath.Join(dir, "pwned")
	values := map[string]string{
		"brief":     "x'; touch /tmp/pwned; echo '$(id)",
		"hostile":   hostilePayload,
		"local":     "x'; touch " + pwned + "; echo '$(touch " + pwned + ")`touch " + pwned + "`",
		"newlines":  "\nline1\n\nline3\n\n",
		"backslash": `a\'b\\c\n\t$'x'`,
		"unicode":   "gruß — 🚀",
		"empty":     "",
	}
	_, statErr := os.Stat("/tmp/pwned")
	preexisting := statErr == nil

	tpl := fixtureAlpine()
	tpl.Params = values
	_, ud := render(t, tpl, testInput(t, catalog.ArchX8664))
	env := writeFiles(t, ud)[EnvPath]["content"].(string)
	envPath := filepath.Join(dir, "env")
	require.NoError(t, os.WriteFile(envPath, []byte(env), 0o644))

	for _, sh := range shells(t) {
		t.Run(filepath.Base(strings.Join(sh, " ")), func(t *testing.T) {
			for name, want := range values {
				out := filepath.Join(dir, "out-"+name)
				script := ". " + gcexec.Quote(envPath) + " && printf '%s' \"$PARAM_" + name + "\" >" + gcexec.Quote(out)
				cmd := exec.Command(sh[0], append(sh[1:], "-c", script)...)
				b, err := cmd.CombinedOutput()
				require.NoError(t, err, "%s", b)
				assert.Empty(t, string(b), "sourcing the env file must print nothing")
				got, err := os.ReadFile(out)
				require.NoError(t, err)
				assert.Equal(t, want, string(got), "param %s must round-trip exactly", name)
			}
			assert.NoFileExists(t, pwned, "a param value was executed")
			if !preexisting {
				assert.NoFileExists(t, "/tmp/pwned", "a param value was executed")
			}
		})
	}
}

// TestRunnerOnHost runs the generated runner and step scripts from
// user-data with the host's shells: steps run in order, output and
// timestamps go to the log, the marker says ok; a failing step stops the
// run, the runner exits with its code and the marker names it.
func TestRunnerOnHost(t *testing.T) {
	asRoot := os.Geteuid() == 0
	build := func(root string, failSecond bool) map[string]any {
		second := "echo \"two $(id -un) $HOME $PARAM_word\" >>\"$PARAM_out\"\n"
		if failSecond {
			second = "echo 'about to fail'\nexit 3\n"
		}
		mode := catalog.ModeUser
		if !asRoot {
			mode = catalog.ModeSystem // runuser needs root
		}
		tpl := &catalog.Template{
			Name:   "debian-13-hosttest",
			Distro: &catalog.Distro{Name: "debian", Family: catalog.FamilyDebian},
			User:   &catalog.User{Name: "root"},
			Params: map[string]string{"out": filepath.Join(root, "order"), "word": "it's $(data)"},
			Provision: []catalog.Step{
				{Mode: catalog.ModeSystem, Description: "one", Script: "echo \"one $GUESTCATALOG_USER $(pwd)\" >>\"$PARAM_out\"\n"},
				{Mode: mode, Description: "two", Script: second},
				{Mode: catalog.ModeSystem, Description: "three", Script: "#!/bin/sh\necho three >>\"$PARAM_out\"\n"},
			},
		}
		_, ud := render(t, tpl, testInput(t, catalog.ArchX8664))
		materialize(t, ud, root)
		return ud
	}

	all := shells(t)
	if testing.Short() {
		all = all[:1] // /bin/sh; every shell without -short
	}
	for _, sh := range all {
		t.Run(filepath.Base(strings.Join(sh, " ")), func(t *testing.T) {
			root := t.TempDir()
			build(root, false)
			cmd := exec.Command(sh[0], append(sh[1:], root+RunnerPath)...)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)
			marker, err := os.ReadFile(root + MarkerPath)
			require.NoError(t, err)
			assert.Equal(t, "ok\n", string(marker))
			order, err := os.ReadFile(filepath.Join(root, "order"))
			require.NoError(t, err)
			want := "one root /\ntwo root /root it's $(data)\nthree\n"
			if !asRoot {
				want = "one root /\ntwo " + currentUser(t) + " " + os.Getenv("HOME") + " it's $(data)\nthree\n"
			}
			assert.Equal(t, want, string(order))
			log, err := os.ReadFile(root + LogPath)
			require.NoError(t, err)
			assert.Regexp(t, `(?s)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ provisioning template debian-13-hosttest\n`+
				`.*Z START 01-one \(system\)\n.*Z OK 01-one \(\d+s\)\n`+
				`.*Z START 02-two \((user|system)\)\n.*Z OK 02-two .*Z START 03-three.*Z provisioning finished: ok\n$`, string(log))
			assert.Contains(t, string(out), "guestcatalog: ", "progress goes to cloud-init's output too")

			// Failure: stops at step 2, names it, keeps step 1's effect.
			root = t.TempDir()
			build(root, true)
			cmd = exec.Command(sh[0], append(sh[1:], root+RunnerPath)...)
			out, err = cmd.CombinedOutput()
			var ee *exec.ExitError
			require.True(t, errors.As(err, &ee), "runner must fail: %v\n%s", err, out)
			assert.Equal(t, 3, ee.ExitCode())
			marker, err = os.ReadFile(root + MarkerPath)
			require.NoError(t, err)
			assert.Equal(t, "failed: 02-two exit 3\n", string(marker))
			m, err := ParseMarker(marker)
			require.NoError(t, err)
			assert.Equal(t, Marker{Step: "02-two", ExitCode: 3}, m)
			order, err = os.ReadFile(filepath.Join(root, "order"))
			require.NoError(t, err)
			assert.Equal(t, "one root /\n", string(order), "step 3 must not run")
			assert.Contains(t, string(out), "about to fail", "the log tail is shown on failure")
		})
	}
}

func currentUser(t *testing.T) string {
	b, err := exec.Command("id", "-un").Output()
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

// TestBootCommands runs bootcmd entries the way cloud-init does (one
// /bin/sh script, entries one after another): the environment is there, a
// failure stops the rest and sets the exit status.
func TestBootCommands(t *testing.T) {
	dir := t.TempDir()
	tpl := fixtureAlpine()
	tpl.Params = map[string]string{"out": filepath.Join(dir, "out"), "v": "a'b $(c)"}
	tpl.Provision = []catalog.Step{
		{Mode: catalog.ModeBoot, Description: "first", Script: "printf '%s|%s\\n' \"$GUESTCATALOG_USER\" \"$PARAM_v\" >>\"$PARAM_out\"\n"},
		{Mode: catalog.ModeBoot, Description: "second", Script: "#!/bin/sh\necho second >>\"$PARAM_out\"\nGUESTCATALOG_02_SECOND\nexit 4\n"},
		{Mode: catalog.ModeBoot, Description: "third", Script: "echo third >>\"$PARAM_out\"\n"},
	}
	_, ud := render(t, tpl, testInput(t, catalog.ArchX8664))
	var script strings.Builder
	script.WriteString("#!/bin/sh\n")
	for _, e := range ud["bootcmd"].([]any) {
		script.WriteString(strings.ReplaceAll(e.(string), BootDir, filepath.Join(dir, "boot")))
	}
	for _, sh := range shells(t) {
		t.Run(filepath.Base(strings.Join(sh, " ")), func(t *testing.T) {
			os.Remove(filepath.Join(dir, "out"))
			cmd := exec.Command(sh[0], append(sh[1:], "-c", script.String())...)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			require.True(t, errors.As(err, &ee), "a failing boot step fails bootcmd: %v\n%s", err, out)
			assert.Equal(t, 4, ee.ExitCode())
			got, err := os.ReadFile(filepath.Join(dir, "out"))
			require.NoError(t, err)
			// The script's own line equal to the default delimiter did not end
			// the here-document early (it would have run as a command).
			assert.Equal(t, "alpine|a'b $(c)\nsecond\n", string(got))
			assert.FileExists(t, filepath.Join(dir, "boot", "02-second.sh"))
		})
	}
}
