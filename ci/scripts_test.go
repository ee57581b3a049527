package ci

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkPipedLog runs .ci/check-piped-log on a log holding text and returns
// its output and whether it passed.
func checkPipedLog(t *testing.T, text string) (string, bool) {
	t.Helper()
	log := filepath.Join(t.TempDir(), "verify-piped.log")
	require.NoError(t, os.WriteFile(log, []byte(text), 0o644))
	out, err := exec.Command("sh", "../.ci/check-piped-log", log).CombinedOutput()
	if err != nil {
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "%s", out)
	}
	return string(out), err == nil
}

func readPiped(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "piped", name))
	require.NoError(t, err)
	return string(b)
}

// withoutLines drops the lines holding any of the substrings.
func withoutLines(text string, drop ...string) string {
	var kept []string
	for _, line := range strings.SplitAfter(text, "\n") {
		keep := true
		for _, d := range drop {
			keep = keep && !strings.Contains(line, d)
		}
		if keep {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "")
}

// Both logs are real: a cold boot (kernel, userspace, ssh, cloud-init, then a
// resume for the checks) and a resumed saved guest only, as a CI run whose
// cache already holds the saved guests prints (stop 18's CI failed on this).
func TestCheckPipedLogPassesColdAndResumedRuns(t *testing.T) {
	cold, resumed := readPiped(t, "cold.log"), readPiped(t, "resumed.log")
	for name, text := range map[string]string{"cold": cold, "resumed": resumed, "both": cold + resumed} {
		out, ok := checkPipedLog(t, text)
		assert.True(t, ok, "%s: %s", name, out)
	}
	out, _ := checkPipedLog(t, cold+resumed)
	assert.Contains(t, out, "[debian-13-containerd] booted cold")
	assert.Contains(t, out, "[debian-13-docker] resumed a saved guest")
}

// The inputs that make each rule fail, each one line-filtered from a passing log.
func TestCheckPipedLogFailsEachRule(t *testing.T) {
	cold, resumed := readPiped(t, "cold.log"), readPiped(t, "resumed.log")
	for _, tc := range []struct {
		name, text, want string
	}{
		{"a cold boot without its kernel phase", withoutLines(cold, "] phase kernel "),
			"[debian-13-containerd] only part of a cold boot's phases"},
		{"a resume without its resume phase", withoutLines(resumed, "] phase resume "),
			"[debian-13-docker] neither a cold boot's phases (kernel, userspace, cloud-init) nor a resume's (load, resume)"},
		{"no ssh phase", withoutLines(resumed, "] phase ssh "), "[debian-13-docker] no phase ssh"},
		{"no launch phase", withoutLines(cold, "] phase launch "), "[debian-13-containerd] no phase launch"},
		{"one good template does not cover a bad one", cold + withoutLines(resumed, "] phase load "),
			"[debian-13-docker] neither"},
		{"a status line on the pipe", strings.Replace(cold, "\n", "\r", 3), "terminal control characters"},
		{"an escape sequence", "\x1b[2K" + resumed, "terminal control characters"},
		{"no events at all", "debian-13-docker\nPASS debian-13-docker (7s, tcg)\n", "no event lines"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, ok := checkPipedLog(t, tc.text)
			assert.False(t, ok, out)
			assert.Contains(t, out, tc.want)
		})
	}
}
