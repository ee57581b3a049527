package machine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework/exec"
	"github.com/guestcatalog/guestcatalog/framework/intervals"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
	"github.com/guestcatalog/guestcatalog/framework/sshx"
)

// panicFirstAttempt makes attempt 1 a real kernel panic before userspace:
// the kernel without its initrd cannot mount root (panic=-1 and -no-reboot
// end QEMU). Attempt 2 boots the image as it is.
func panicFirstAttempt(seen *[]int) func(int, *Config) {
	return func(n int, c *Config) {
		*seen = append(*seen, n)
		if n == 1 {
			c.Image.Initrd = ""
			c.Image.Append = "root=/dev/nonexistent console=ttyS0,115200 panic=-1"
		}
	}
}

// TestIntegrationFlakyBootRetriedResumesReseedAndIdentity: (1) a kernel
// panic on the first attempt is retried once with a fresh overlay, and the
// machine says it was flaky, with the first attempt's console tail; (2) the
// guest is saved and resumed twice: each resume gets a new VM generation ID,
// the kernel reseeds ("crng reseeded due to virtual machine fork") and the
// two resumes read different random bytes; (3) a saved guest whose pinned
// host key was replaced fails its identity check with a reason.
func TestIntegrationFlakyBootRetriedResumesReseedAndIdentity(t *testing.T) {
	img := debianImage(t)
	tmpl := debianTemplate(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	artifacts := artifactsDir(t)
	var seen []int
	m, err := Start(ctx, Config{Template: tmpl, Image: img, Accel: qemu.AccelTCG, ArtifactsDir: artifacts, Logger: newTestLogger(t),
		RetryInfra: true, SkipProbes: true, Saveable: true, attemptHook: panicFirstAttempt(&seen),
		// Attempt 1 fails on purpose; attempt 2 is a real boot, which under
		// multi-threaded TCG can itself panic now and then (an x86 guest's
		// code patching races: about 1 in 25 boots here): one more retry
		// keeps that from failing this test.
		infraRetries: 2})
	require.NoError(t, err)
	defer m.Close(context.Background())
	require.GreaterOrEqual(t, len(seen), 2, "retried")
	assert.Equal(t, []int{1, 2}, seen[:2])
	assert.True(t, m.Flaky())
	att := m.Attempts()
	require.Len(t, att, len(seen)-1, "one failed attempt per retry")
	t.Logf("first attempt: %+v", att[0])
	assert.Contains(t, []string{PhaseKernel, PhaseUserspace}, att[0].Phase)
	assert.Contains(t, att[0].ConsoleTail, "Kernel panic")
	assert.Equal(t, filepath.Join(artifacts, "attempt-1"), att[0].ArtifactsDir)
	assert.FileExists(t, filepath.Join(att[0].ArtifactsDir, ArtifactSerial), "the first attempt's console is kept")
	assert.FileExists(t, filepath.Join(artifacts, ArtifactSerial), "the second attempt's console")

	dir := t.TempDir()
	files, err := m.Save(ctx, dir)
	require.NoError(t, err)
	clientKey, err := os.ReadFile(files.ClientKey)
	require.NoError(t, err)
	hostKey, err := os.ReadFile(files.HostKey)
	require.NoError(t, err)
	resume := func(hk []byte) (*Machine, error) {
		return Start(ctx, Config{Template: tmpl, Image: img, ArtifactsDir: artifactsDir(t), Logger: newTestLogger(t),
			Resume: &Resume{Disk: files.Disk, State: files.State, RAM: files.RAM, Seed: files.Seed, ClientKey: clientKey, HostKey: hk, Accel: qemu.AccelTCG}})
	}
	var randoms []string
	for i := range 2 {
		r, err := resume(hostKey)
		require.NoError(t, err, "resume %d", i+1)
		out, err := exec.ScriptOutput(ctx, r.Runner(), "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'")
		require.NoError(t, err)
		randoms = append(randoms, out)
		res, err := r.Runner().Run(ctx, exec.Cmd{Script: "dmesg | grep -c 'crng reseeded due to virtual machine fork' || true", Sudo: true})
		require.NoError(t, err)
		t.Logf("resume %d: urandom %s, reseed lines %s", i+1, out, strings.TrimSpace(string(res.Stdout)))
		assert.Equal(t, "1", strings.TrimSpace(string(res.Stdout)), "the guest kernel reseeded on resume %d (vmgenid)", i+1)
		require.NoError(t, r.Close(ctx))
	}
	assert.NotEqual(t, randoms[0], randoms[1], "two resumes of one saved guest read different random bytes")

	// The pinned host key file replaced: the guest's key is refused, and
	// the failure says the saved guest failed its identity check.
	other, err := sshx.NewHostKey("replaced")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(files.HostKey, []byte(other.PrivatePEM), 0o600))
	replaced, err := os.ReadFile(files.HostKey)
	require.NoError(t, err)
	_, err = resume(replaced)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrSavedGuestMismatch)
	assert.ErrorIs(t, err, sshx.ErrHostKeyMismatch)
	reason, identity, ok := ResumeFailure(err)
	assert.True(t, ok)
	assert.True(t, identity)
	assert.True(t, strings.HasPrefix(reason, "identity check failed: phase ssh: "), reason)
	t.Logf("discard reason: %s", reason)
}

// TestIntegrationFailureAfterUserspaceIsNotRetried: a guest whose init ran
// and then failed (here: sshd not answering within a 1 s ssh interval) is
// the template's failure: one attempt only, even with RetryInfra.
func TestIntegrationFailureAfterUserspaceIsNotRetried(t *testing.T) {
	img := debianImage(t)
	f := filepath.Join(t.TempDir(), "intervals.yaml")
	require.NoError(t, os.WriteFile(f, []byte("intervals:\n  default/wait-ssh: {base: 1s, tcg: 1s}\n"), 0o644))
	ivals, err := intervals.Load(intervals.WithFile(f))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var seen []int
	_, err = Start(ctx, Config{Template: debianTemplate(t), Image: img, Accel: qemu.AccelTCG, ArtifactsDir: artifactsDir(t), Logger: newTestLogger(t),
		Intervals: ivals, RetryInfra: true, attemptHook: func(n int, _ *Config) { seen = append(seen, n) }})
	require.Error(t, err)
	var pe *PhaseError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, PhaseSSH, pe.Phase)
	assert.True(t, errors.Is(err, ErrPhaseTimeout), "%v", err)
	// The ssh failure ends the start. An attempt before it can only have
	// failed before userspace (a flaky boot, retried), never at ssh.
	assert.Len(t, seen, len(pe.Attempts)+1, "one start attempt per recorded failure, the ssh one last")
	for _, a := range pe.Attempts {
		assert.Contains(t, []string{PhaseLaunch, PhaseKernel, PhaseUserspace}, a.Phase, "retried only before userspace: %+v", a)
	}
}

// TestIntegrationRetryBudget: a start that fails before userspace every
// time (QEMU refuses an option and exits at launch) is tried 1 + the
// budget times, and no more; each failed attempt keeps its artifacts in
// attempt-N and is in the error, the last one being the error itself.
func TestIntegrationRetryBudget(t *testing.T) {
	img := debianImage(t)
	for _, tc := range []struct {
		name    string
		retries int
		want    []int
	}{{"default is one retry", 0, []int{1, 2}}, {"two retries", 2, []int{1, 2, 3}}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			artifacts := artifactsDir(t)
			var seen []int
			_, err := Start(ctx, Config{Template: debianTemplate(t), Image: img, Accel: qemu.AccelTCG, ArtifactsDir: artifacts,
				Logger: newTestLogger(t), ExtraQEMUArgs: []string{"-no-such-option"}, RetryInfra: true, infraRetries: tc.retries,
				attemptHook: func(n int, _ *Config) { seen = append(seen, n) }})
			require.Error(t, err)
			var pe *PhaseError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, PhaseLaunch, pe.Phase, "%v", err)
			assert.Equal(t, tc.want, seen)
			require.Len(t, pe.Attempts, len(tc.want)-1)
			for i, a := range pe.Attempts {
				assert.Equal(t, PhaseLaunch, a.Phase)
				assert.Equal(t, filepath.Join(artifacts, fmt.Sprintf("attempt-%d", i+1)), a.ArtifactsDir)
				assert.DirExists(t, a.ArtifactsDir)
			}
		})
	}
}
