package machine

import (
	"context"
	"fmt"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework/exec"
)

// TestIntegrationSnapshotResume provisions a guest, saves it, and resumes
// it: the resumed guest answers SSH with the same keys, keeps what the
// first run wrote, has the host's time, and skips the boot phases.
func TestIntegrationSnapshotResume(t *testing.T) {
	img := debianImage(t)
	tmpl := debianTemplate(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	m, err := Start(ctx, Config{Template: tmpl, Image: img, Accel: qemu.AccelTCG, ArtifactsDir: artifactsDir(t), Logger: newTestLogger(t), Saveable: true, RetryInfra: true})
	require.NoError(t, err)
	_, err = m.Runner().Run(ctx, exec.Cmd{Script: "echo before-snapshot > /var/tmp/mark", Sudo: true})
	require.NoError(t, err)
	dir := t.TempDir()
	files, err := m.Save(ctx, dir)
	require.NoError(t, err)
	assert.False(t, processAlive(m.QEMUPid()), "Snapshot stops QEMU")
	for _, f := range []string{files.Disk, files.State, files.RAM, files.Seed, files.ClientKey, files.HostKey} {
		_, err := os.Stat(f)
		require.NoError(t, err, f)
	}
	clientKey, err := os.ReadFile(files.ClientKey)
	require.NoError(t, err)
	hostKey, err := os.ReadFile(files.HostKey)
	require.NoError(t, err)
	require.True(t, m.ClockAtLogin(), "Save installs the clock hook in a Debian guest")
	saved := map[string]os.FileInfo{}
	for _, f := range []string{files.Disk, files.RAM, files.State} {
		saved[f], err = os.Stat(f)
		require.NoError(t, err)
	}

	// The guest wakes at the time it was saved: let that be well behind
	// the host's, so that only a clock set on resume passes.
	const behind = 8 * time.Second
	time.Sleep(behind)
	started := time.Now()
	r, err := Start(ctx, Config{Template: tmpl, Image: img, ArtifactsDir: artifactsDir(t), Logger: newTestLogger(t),
		Resume: &Resume{Disk: files.Disk, State: files.State, RAM: files.RAM, Seed: files.Seed, ClientKey: clientKey, HostKey: hostKey, Accel: qemu.AccelTCG,
			ClockAtLogin: true}})
	require.NoError(t, err)
	defer r.Close(context.Background())
	t.Logf("resumed and ready in %s", time.Since(started))
	logPhases(t, r.Phases())
	out, err := exec.Output(ctx, r.Runner(), "cat", "/var/tmp/mark")
	require.NoError(t, err)
	assert.Equal(t, "before-snapshot", out)
	out, err = exec.Output(ctx, r.Runner(), "date", "+%s")
	require.NoError(t, err)
	var guest int64
	_, err = fmt.Sscan(out, &guest)
	require.NoError(t, err)
	assert.InDelta(t, time.Now().Unix(), guest, 2, "the resumed guest's clock follows the host")
	// The host sent no time (ClockAtLogin): the guest's hook stepped its
	// clock, by about the time the guest was saved; without the hook the
	// guest would be that far behind.
	steps, err := exec.Output(ctx, r.Runner(), "cat", ClockStepLog)
	require.NoError(t, err, "the clock hook logged no step")
	var before, after int64
	_, err = fmt.Sscan(steps, &before, &after)
	require.NoError(t, err, "step log %q", steps)
	assert.GreaterOrEqual(t, after-before, int64(behind/time.Second)-2, "the hook stepped the clock forward by the time the guest was saved")
	for _, p := range r.Phases() {
		if p.Name == PhaseResume {
			assert.Contains(t, p.Detail, "by the guest", "the host did not send its time")
		}
	}
	var names []string
	for _, p := range r.Phases() {
		names = append(names, p.Name)
	}
	assert.NotContains(t, names, PhaseKernel, "a resumed guest does not boot")
	assert.Contains(t, names, PhaseResume)

	// The saved files are never written: a second resume works too.
	for _, f := range []string{files.Disk, files.RAM, files.State} {
		info, err := os.Stat(f)
		require.NoError(t, err)
		assert.Equal(t, info.ModTime(), saved[f].ModTime(), f)
	}
	require.NoError(t, r.Close(ctx))
}
