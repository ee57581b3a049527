package machine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/exec"
	"github.com/guestcatalog/guestcatalog/framework/intervals"
)

// countingProbe passes from its nth run on; it counts its runs in $COUNT.
func countingProbe(n string) catalog.Probe {
	return catalog.Probe{Description: "ready on run " + n, Script: `c=$(cat "$COUNT" 2>/dev/null || echo 0)
c=$((c+1)); echo "$c" > "$COUNT"
echo "run $c"
[ "$c" -ge ` + n + ` ]`}
}

func runs(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

// TestProbeEventually runs probe scripts on the host through the same
// runner script as in a guest.
func TestProbeEventually(t *testing.T) {
	ctx := context.Background()
	host := &exec.Host{}

	count := filepath.Join(t.TempDir(), "count")
	env := map[string]string{"COUNT": count}
	b := probeBounds{timeout: 5 * time.Second, within: 5 * time.Second, poll: 10 * time.Millisecond}
	n, err := runProbe(ctx, host, env, 0, countingProbe("3"), b)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.Equal(t, "3", runs(t, count), "run until it passed")

	// without eventually: one run
	count = filepath.Join(t.TempDir(), "count")
	env = map[string]string{"COUNT": count}
	_, err = runProbe(ctx, host, env, 0, countingProbe("3"), probeBounds{timeout: 5 * time.Second})
	var pe *ProbeError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "1", runs(t, count))
	assert.Equal(t, "probe failed: probe 1 \"ready on run 3\" exited 1\noutput (last lines):\n    run 1", err.Error())

	// never passes within the bound: the last run's output, and how many
	count = filepath.Join(t.TempDir(), "count")
	env = map[string]string{"COUNT": count}
	b = probeBounds{timeout: 5 * time.Second, within: 2 * time.Second, poll: 100 * time.Millisecond}
	start := time.Now()
	n, err = runProbe(ctx, host, env, 1, countingProbe("1000"), b)
	assert.Less(t, time.Since(start), 5*time.Second)
	require.ErrorAs(t, err, &pe)
	assert.ErrorIs(t, err, ErrProbeFailed)
	// the run reported is the last one that ended on its own: its number
	// in the guest's count is the number of runs reported
	last := strconv.Itoa(pe.Attempts)
	assert.Equal(t, "probe failed: probe 2 \"ready on run 1000\" did not pass within 2s ("+last+" runs; the last exited 1)\noutput (last lines):\n    run "+last, err.Error())
	assert.Greater(t, pe.Attempts, 1)
	assert.Equal(t, pe.Attempts, n)

	// a run that hangs is cut by the bound, not only by its own timeout
	b = probeBounds{timeout: time.Minute, within: 200 * time.Millisecond, poll: 50 * time.Millisecond}
	start = time.Now()
	_, err = runProbe(ctx, host, nil, 0, catalog.Probe{Description: "hangs", Script: "exec sleep 30"}, b)
	assert.Less(t, time.Since(start), 5*time.Second)
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, -1, pe.ExitCode)
	assert.Equal(t, `probe failed: probe 1 "hangs" did not pass within 200ms (1 runs; the last did not finish in time)`, err.Error())

	// a cancelled context ends the retries at once
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	b = probeBounds{timeout: time.Minute, within: time.Minute, poll: 20 * time.Millisecond}
	start = time.Now()
	_, err = runProbe(cctx, host, map[string]string{"COUNT": filepath.Join(t.TempDir(), "c")}, 0, countingProbe("1000"), b)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.True(t, errors.Is(err, context.Canceled), "%v", err)
}

// TestResolveProbe: eventually is scaled by the accelerator, durations too;
// timeout keeps the meaning it had (a duration as is).
func TestResolveProbe(t *testing.T) {
	s, err := intervals.Load()
	require.NoError(t, err)
	p := catalog.Probe{Description: "d", Script: "true", Timeout: "30s", Eventually: "engine"}
	b, err := resolveProbe(s, p, intervals.AccelTCG)
	require.NoError(t, err)
	assert.Equal(t, probeBounds{timeout: 30 * time.Second, within: 6 * time.Minute, poll: 6 * time.Second}, b)

	p.Eventually = "90s"
	d, err := ProbeBudget(s, p, intervals.AccelTCG)
	require.NoError(t, err)
	assert.Equal(t, 270*time.Second, d)
	d, err = ProbeBudget(s, catalog.Probe{}, intervals.AccelTCG)
	require.NoError(t, err)
	assert.Equal(t, 3*time.Minute, d, "no eventually: the timeout, default probe")

	p.Eventually = "no/such"
	_, err = resolveProbe(s, p, intervals.AccelKVM)
	require.ErrorIs(t, err, intervals.ErrUnknown)
	assert.True(t, strings.HasPrefix(err.Error(), `eventually: interval "no/such": unknown interval`), err.Error())
}

// TestShippedProbeIntervals: every timeout and eventually of a shipped
// probe names an interval the defaults define.
func TestShippedProbeIntervals(t *testing.T) {
	s, err := intervals.Load()
	require.NoError(t, err)
	c, err := catalog.Load(context.Background())
	require.NoError(t, err)
	withEventually := 0
	for _, tmpl := range c.Templates() {
		for _, p := range tmpl.Probes {
			_, err := resolveProbe(s, p, intervals.AccelTCG)
			assert.NoError(t, err, "%s: probe %q", tmpl.Name, p.Description)
			if p.Eventually != "" {
				withEventually++
			}
		}
	}
	assert.Positive(t, withEventually)
}

// TestCheckProbeIntervals: unknown interval names are found before boot.
func TestCheckProbeIntervals(t *testing.T) {
	s, err := intervals.Load()
	require.NoError(t, err)
	require.NoError(t, checkProbeIntervals(s, []catalog.Probe{{Description: "a", Timeout: "30s", Eventually: "docker/wait-engine"}, {Description: "b"}}))
	err = checkProbeIntervals(s, []catalog.Probe{
		{Description: "ok"},
		{Description: "typo", Eventually: "docker/wait-engin"},
		{Description: "bad timeout", Timeout: "nope"},
	})
	require.ErrorIs(t, err, intervals.ErrUnknown)
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 2)
	assert.True(t, strings.HasPrefix(lines[0], `probe 2 "typo": eventually: interval "docker/wait-engin": unknown interval (known: `), lines[0])
	assert.True(t, strings.HasPrefix(lines[1], `probe 3 "bad timeout": timeout: interval "nope": unknown interval (known: `), lines[1])
}
