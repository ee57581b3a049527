package machine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/exec"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
	"github.com/guestcatalog/guestcatalog/framework/sshx"
)

// Integration tests boot the locally built Debian 13 image under QEMU.
// Each boot takes ~30-60 s under TCG on 2 shared cores.

func debianTemplate(t testing.TB) *catalog.Template {
	t.Helper()
	cat, err := catalog.Load(context.Background())
	require.NoError(t, err)
	tmpl, err := cat.Resolve("debian-13")
	require.NoError(t, err)
	return tmpl
}

func TestIntegrationBootDebianTCG(t *testing.T) {
	img := debianImage(t)
	tmpl := debianTemplate(t)
	// A probe that shows the template env reaches probes.
	tmpl.Probes = append(tmpl.Probes, catalog.Probe{Description: "user and env", Script: "#!/bin/sh\nset -eu\ntest \"$(id -un)\" = \"$GUESTCATALOG_USER\"\n", Timeout: "30s"})
	// A probe that passes on its third run: eventually retries it in the guest.
	tmpl.Probes = append(tmpl.Probes, catalog.Probe{Description: "ready on the third run", Eventually: "2m",
		Script: "c=$(cat /tmp/gc-probe-runs 2>/dev/null || echo 0)\nc=$((c+1))\necho \"$c\" >/tmp/gc-probe-runs\n[ \"$c\" -ge 3 ]\n"})
	artifacts := artifactsDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	m, err := Start(ctx, Config{Template: tmpl, Image: img, Accel: qemu.AccelTCG, ArtifactsDir: artifacts, Logger: newTestLogger(t), RetryInfra: true})
	require.NoError(t, err)
	defer m.Close(context.Background())
	logPhases(t, m.Phases())

	out, err := exec.Output(ctx, m.Runner(), "uname", "-r")
	require.NoError(t, err)
	assert.NotEmpty(t, out)
	out, err = exec.Output(ctx, m.Runner(), "cat", "/tmp/gc-probe-runs")
	require.NoError(t, err)
	assert.Equal(t, "3", out, "the eventually probe ran until it passed, and no more")
	out, err = exec.Output(ctx, m.Runner(), "cat", ProvisionedMarker)
	require.NoError(t, err)
	assert.Equal(t, "ok", out)
	assert.Equal(t, qemu.AccelTCG, m.Accelerator().Used)
	assert.NotEmpty(t, m.QEMUVersion())
	assert.Contains(t, m.SSHCommand(), "StrictHostKeyChecking=yes")

	// A client that pins another host key is refused at once.
	other, err := sshx.NewHostKey("")
	require.NoError(t, err)
	refusedAt := time.Now()
	_, err = sshx.WaitDial(ctx, fmt.Sprintf("127.0.0.1:%d", m.SSHPort()), m.Template().User.Name, m.clientKey.Signer, other.PublicKey, sshx.Options{})
	require.ErrorIs(t, err, sshx.ErrHostKeyMismatch)
	assert.Less(t, time.Since(refusedAt), 20*time.Second, "a mismatch is not retried")
	assert.Contains(t, err.Error(), m.hostKey.Fingerprint(), "names the key the guest showed")
	assert.Contains(t, err.Error(), other.Fingerprint(), "names the pinned key")

	// The pasted command works and is pinned.
	line := m.SSHCommand() + " -o BatchMode=yes echo pasted-ok"
	b, err := osexec.CommandContext(ctx, "sh", "-c", line).CombinedOutput()
	require.NoError(t, err, string(b))
	assert.Equal(t, "pasted-ok", strings.TrimSpace(string(b)))

	pid := m.QEMUPid()
	runDir := m.RunDir()
	require.NoError(t, m.Close(ctx))
	require.NoError(t, m.Close(ctx), "Close is idempotent")
	assert.False(t, processAlive(pid), "QEMU %d still running after Close", pid)
	_, err = os.Stat(runDir)
	assert.True(t, os.IsNotExist(err), "run dir %s removed", runDir)

	for _, f := range []string{ArtifactSerial, ArtifactQEMUArgv, ArtifactPhases, ArtifactAccel, ArtifactUserData,
		ArtifactCloudInitLog, ArtifactCloudInitOut, ArtifactCloudInitState, ArtifactProvisionLog, ArtifactJournal} {
		st, err := os.Stat(filepath.Join(artifacts, f))
		if assert.NoError(t, err, f) {
			assert.Positive(t, st.Size(), f)
		}
	}
	var phases []PhaseTiming
	b, err = os.ReadFile(filepath.Join(artifacts, ArtifactPhases))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &phases))
	names := make([]string, len(phases))
	for i, p := range phases {
		names[i] = p.Name
		assert.Equal(t, ResultOK, p.Result, p.Name)
	}
	assert.Equal(t, []string{PhasePrepare, PhaseLaunch, PhaseKernel, PhaseUserspace, PhaseSSH, PhaseCloudInit, PhaseProbes}, names)
}

func TestIntegrationAccelAutoEndsOnTCG(t *testing.T) {
	img := debianImage(t)
	if _, err := os.Stat("/dev/kvm"); err != nil {
		t.Skip("no /dev/kvm: auto is tcg at once")
	}
	artifacts := artifactsDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	m, err := Start(ctx, Config{Template: debianTemplate(t), Image: img, Accel: qemu.AccelAuto, ArtifactsDir: artifacts, Logger: newTestLogger(t), SkipProbes: true, RetryInfra: true})
	require.NoError(t, err)
	defer m.Close(context.Background())
	logPhases(t, m.Phases())
	acc := m.Accelerator()
	t.Logf("accelerator: %+v", acc)
	// On these machines nested KVM hangs guests: the watchdog falls back.
	assert.Equal(t, qemu.AccelTCG, acc.Used)
	assert.NotEmpty(t, acc.Reason)
	b, err := os.ReadFile(filepath.Join(artifacts, ArtifactAccel))
	require.NoError(t, err)
	assert.Contains(t, string(b), `"tcg"`)
	_, err = exec.Output(ctx, m.Runner(), "true")
	require.NoError(t, err)
}

// TestIntegrationKernelPanicNoInitrd: a kernel without its initrd cannot
// mount root and panics within seconds; panic=-1 and -no-reboot make QEMU
// exit. Start fails in the userspace phase with the panic line, at once.
func TestIntegrationKernelPanicNoInitrd(t *testing.T) {
	img := debianImage(t)
	img.Initrd = ""
	img.Append = "root=/dev/nonexistent console=ttyS0,115200 panic=-1"
	artifacts := artifactsDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	m, err := Start(ctx, Config{Template: debianTemplate(t), Image: img, Accel: qemu.AccelTCG, ArtifactsDir: artifacts, Logger: newTestLogger(t)})
	elapsed := time.Since(start)
	require.Error(t, err)
	t.Logf("error after %s:\n%v", elapsed, err)
	var pe *PhaseError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, PhaseUserspace, pe.Phase)
	require.ErrorIs(t, err, ErrConsoleFailure)
	var cf *ConsoleFailureError
	require.ErrorAs(t, err, &cf)
	assert.Contains(t, cf.Line, "Kernel panic - not syncing")
	assert.Contains(t, pe.ConsoleTail, "Kernel panic")
	assert.Less(t, elapsed, time.Minute)
	require.NotNil(t, m)
	assert.False(t, processAlive(m.QEMUPid()))
	_, statErr := os.Stat(m.RunDir())
	assert.True(t, os.IsNotExist(statErr), "run dir removed after a failed Start")
	ts := m.Phases()
	assert.Equal(t, ResultAborted, ts[len(ts)-1].Result)
}

// TestIntegrationQEMUStartFailure: QEMU refuses the kernel at once; the
// launch phase fails and the error shows QEMU's own message.
func TestIntegrationQEMUStartFailure(t *testing.T) {
	requireTool(t, "qemu-system-x86_64", "qemu-img")
	dir := t.TempDir()
	disk := filepath.Join(dir, "base.qcow2")
	out, err := osexec.Command("qemu-img", "create", "-q", "-f", "qcow2", disk, "64M").CombinedOutput()
	require.NoError(t, err, string(out))
	notKernel := filepath.Join(dir, "vmlinuz")
	require.NoError(t, os.WriteFile(notKernel, []byte("not a kernel"), 0o644))
	artifacts := artifactsDir(t)
	start := time.Now()
	m, err := Start(context.Background(), Config{Template: debianTemplate(t), Image: Image{Disk: disk, Kernel: notKernel, Append: "console=ttyS0"}, Accel: qemu.AccelTCG, ArtifactsDir: artifacts})
	require.Error(t, err)
	t.Logf("%v", err)
	var pe *PhaseError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, PhaseLaunch, pe.Phase)
	assert.Less(t, time.Since(start), 30*time.Second)
	assert.Contains(t, err.Error(), "qemu")
	if m != nil {
		_, statErr := os.Stat(m.RunDir())
		assert.True(t, os.IsNotExist(statErr), "run dir removed")
	}
}

func TestIntegrationKernelPanicFailsEarly(t *testing.T) {
	img := debianImage(t)
	img.Append = strings.Replace(img.Append, "root=LABEL=root", "root=/dev/nonexistent", 1)
	if !strings.Contains(img.Append, "root=/dev/nonexistent") {
		img.Append = "root=/dev/nonexistent " + img.Append
	}
	// The initramfs waits for the root device (rootdelay default 30 s in
	// initramfs-tools) before it gives up and panics.
	img.Append += " rootdelay=3"
	artifacts := artifactsDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	m, err := Start(ctx, Config{Template: debianTemplate(t), Image: img, Accel: qemu.AccelTCG, ArtifactsDir: artifacts, Logger: newTestLogger(t)})
	elapsed := time.Since(start)
	require.Error(t, err)
	t.Logf("error after %s:\n%v", elapsed, err)
	var pe *PhaseError
	require.ErrorAs(t, err, &pe)
	assert.Contains(t, []string{PhaseKernel, PhaseUserspace}, pe.Phase)
	assert.Equal(t, "debian-13", pe.Template)
	assert.True(t, errors.Is(err, ErrConsoleFailure) || errors.Is(err, ErrQEMUExited), "err: %v", err)
	assert.Contains(t, err.Error(), "artifacts: "+artifacts)
	assert.NotEmpty(t, pe.ConsoleTail)
	assert.Regexp(t, `Kernel panic|Gave up waiting for root|does not exist|Unable to mount root`, err.Error())
	if m != nil {
		logPhases(t, m.Phases())
		assert.False(t, processAlive(m.QEMUPid()), "no QEMU left after a failed Start")
	}
	assert.Less(t, elapsed, 2*time.Minute, "fails early, not after the ssh timeout")
}

// TestIntegrationKilledParentLeavesNoQEMU re-executes the test binary as a
// child that starts a machine and reports QEMU's pid; the parent SIGKILLs
// the child and checks that QEMU is gone.
func TestIntegrationKilledParentLeavesNoQEMU(t *testing.T) {
	if os.Getenv("GUESTCATALOG_MACHINE_CHILD") == "1" {
		childStartAndHang(t)
		return
	}
	img := debianImage(t)
	_ = img
	pidFile := filepath.Join(t.TempDir(), "qemu.pid")
	cmd := osexec.Command(os.Args[0], "-test.run", "^TestIntegrationKilledParentLeavesNoQEMU$", "-test.v")
	cmd.Env = append(os.Environ(), "GUESTCATALOG_MACHINE_CHILD=1", "GUESTCATALOG_MACHINE_PIDFILE="+pidFile)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var pid int
	var runDir string
	deadline := time.Now().Add(3 * time.Minute)
	for pid == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("child did not report a QEMU pid:\n%s", out)
		}
		if b, err := os.ReadFile(pidFile); err == nil {
			if f := strings.Fields(string(b)); len(f) == 2 {
				pid, _ = strconv.Atoi(f[0])
				runDir = f[1]
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.True(t, processAlive(pid), "QEMU %d runs while the child lives", pid)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	gone := false
	for i := 0; i < 100; i++ {
		if !processAlive(pid) {
			gone = true
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !gone {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	assert.True(t, gone, "QEMU %d outlived its SIGKILLed parent", pid)

	// What the killed process could not remove (its run dir: overlay,
	// seed, keys) is found and removed by qemu.Gc from its owner record.
	require.DirExists(t, runDir)
	res, err := qemu.Gc(context.Background())
	require.NoError(t, err)
	t.Logf("gc removed %d run dirs", len(res.Removed))
	assert.NoDirExists(t, runDir)
}

func childStartAndHang(t *testing.T) {
	img := debianImage(t)
	ctx := context.Background()
	m, err := Start(ctx, Config{Template: debianTemplate(t), Image: img, Accel: qemu.AccelTCG, ArtifactsDir: t.TempDir(), SkipProbes: true,
		// Report as soon as QEMU runs: no need to wait for a full boot.
		onLaunch: func(m *Machine) {
			f := os.Getenv("GUESTCATALOG_MACHINE_PIDFILE")
			_ = os.WriteFile(f+".tmp", []byte(fmt.Sprintf("%d %s", m.QEMUPid(), m.RunDir())), 0o644)
			_ = os.Rename(f+".tmp", f)
		}})
	if err != nil {
		t.Logf("start: %v", err)
	}
	_ = m
	time.Sleep(10 * time.Minute)
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie is dead for our purpose.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && len(s) > i+2 {
		return s[i+2] != 'Z'
	}
	return true
}

func logPhases(t testing.TB, ps []PhaseTiming) {
	t.Helper()
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "  %-10s start %6.1fs  took %6.1fs  %s  %s\n", p.Name, p.Start.Seconds(), p.Duration.Seconds(), p.Result, p.Detail)
	}
	t.Logf("phases:\n%s", b.String())
}
