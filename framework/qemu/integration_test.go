package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"github.com/guestcatalog/guestcatalog/catalog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework/console"
	"github.com/guestcatalog/guestcatalog/framework/qemu/qemutest"
)

// Guests used below: a Debian cloud kernel with a busybox initramfs. They
// reach userspace in a few seconds under TCG.
const (
	idleInit = qemutest.PreludeMounts + qemutest.PowerButton +
		"echo GUEST-READY\nwhile true; do sleep 1; done\n"
	poweroffInit = qemutest.PreludeMounts + "echo GUEST-BYE\npoweroff -f\n"
	counterInit  = qemutest.PreludeMounts +
		"i=0\nwhile true; do i=$((i+1)); echo \"TICK $i\"; sleep 0.3; done\n"
)

// testRoot is a short run root for one test (QMP socket path limit).
func testRoot(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "gcq")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func requireQEMU(t *testing.T) {
	t.Helper()
	qemutest.RequireTools(t, Binary(catalog.HostArch()), QemuImg)
}

func kernelSpec(t *testing.T, init string) Spec {
	t.Helper()
	k := qemutest.Kernel(t)
	return Spec{
		Name: "test", Accel: AccelTCG, CPUs: 1, MemoryBytes: 256 << 20,
		Kernel: k.Kernel, Initrd: qemutest.Initramfs(t, init, k.Modules),
		Append: "console=ttyS0 panic=-1",
	}
}

func waitConsole(t *testing.T, inst *Instance, re string, d time.Duration) console.Match {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	p := console.Pattern{Name: re, Kind: console.Progress, Re: regexp.MustCompile(re)}
	m, err := console.Wait(ctx, console.WaitInput{Path: inst.SerialLog(), Want: []console.Pattern{p},
		Options: []console.FollowOption{console.WithStop(inst.Exited())}})
	require.NoError(t, err, "qemu: %v", inst.Err())
	return m
}

func gone(pid int) bool {
	state, _, err := procStat(pid)
	return err != nil || state == 'Z'
}

func eventually(t *testing.T, d time.Duration, f func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestIntegrationQMPStatusEventsAndShutdown(t *testing.T) {
	requireQEMU(t)
	spec := kernelSpec(t, idleInit)
	spec.Forwards = []Forward{{GuestPort: 22}}
	logs := t.TempDir()
	inst, err := Start(t.Context(), spec, WithRunRoot(testRoot(t)), WithLogDir(logs))
	require.NoError(t, err)
	defer inst.Shutdown(context.Background(), 0)

	assert.Regexp(t, `^\d+\.\d+\.\d+$`, inst.Version())
	assert.NotZero(t, inst.HostPort(22), "port 0 was replaced by a free port")
	assert.FileExists(t, filepath.Join(inst.RunDir(), QMPSocketName))
	owner, err := ReadOwner(inst.RunDir())
	require.NoError(t, err)
	assert.Equal(t, os.Getpid(), owner.PID)
	assert.Equal(t, inst.PID(), owner.QEMUPID)

	st, err := inst.Status(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "running", st)

	_, err = inst.Execute(t.Context(), "no-such-command", nil)
	assert.ErrorContains(t, err, "no-such-command")

	waitConsole(t, inst, `GUEST-READY`, 2*time.Minute)
	// The guest powers off on the ACPI power button: a graceful shutdown.
	t0 := time.Now()
	require.NoError(t, inst.Shutdown(t.Context(), 30*time.Second))
	t.Logf("graceful powerdown took %s", time.Since(t0))
	if !assert.Equal(t, "powerdown", inst.How()) {
		lines, _ := console.Tail(inst.SerialLog(), 15)
		t.Logf("console:\n%s", strings.Join(lines, "\n"))
	}
	assert.NoError(t, inst.Err())
	assert.True(t, gone(inst.PID()))
	names := []string{}
	for _, e := range inst.Events() {
		names = append(names, e.Name)
	}
	assert.Contains(t, names, "POWERDOWN")
	assert.Contains(t, names, "SHUTDOWN")
	ev, err := inst.WaitEvent(t.Context(), "SHUTDOWN")
	require.NoError(t, err)
	assert.Equal(t, true, ev.Data["guest"])

	// Events were written as JSON lines for the artifacts.
	b, err := os.ReadFile(filepath.Join(logs, EventsName))
	require.NoError(t, err)
	assert.Contains(t, string(b), `"event":"POWERDOWN"`)
	assert.FileExists(t, filepath.Join(logs, SerialLogName))
	// The run dir Start created is gone; the logs elsewhere stay.
	assert.NoDirExists(t, inst.RunDir())

	_, err = inst.Status(t.Context())
	assert.ErrorIs(t, err, ErrExited)
	require.NoError(t, inst.Shutdown(t.Context(), time.Second), "Shutdown is idempotent")
}

func TestIntegrationShutdownEscalatesToQuit(t *testing.T) {
	requireQEMU(t)
	// This guest has no power button handler: powerdown is ignored.
	spec := kernelSpec(t, qemutest.PreludeMounts+"echo GUEST-READY\nwhile true; do sleep 1; done\n")
	inst, err := Start(t.Context(), spec, WithRunRoot(testRoot(t)))
	require.NoError(t, err)
	waitConsole(t, inst, `GUEST-READY`, 2*time.Minute)
	t0 := time.Now()
	require.NoError(t, inst.Shutdown(t.Context(), 2*time.Second))
	assert.Less(t, time.Since(t0), 8*time.Second)
	assert.Equal(t, "quit", inst.How())
	assert.NoError(t, inst.Err())
	assert.True(t, gone(inst.PID()))
}

func TestIntegrationGuestPoweroffEndsQEMU(t *testing.T) {
	requireQEMU(t)
	spec := kernelSpec(t, poweroffInit)
	inst, err := Start(t.Context(), spec, WithRunRoot(testRoot(t)))
	require.NoError(t, err)
	defer inst.Shutdown(context.Background(), 0)
	select {
	case <-inst.Exited():
	case <-time.After(2 * time.Minute):
		t.Fatal("guest did not power off")
	}
	assert.NoError(t, inst.Err())
	assert.Equal(t, "exited", inst.How())
	// An owned run dir (holding the logs) stays until Shutdown.
	assert.DirExists(t, inst.RunDir())
	// The guest's last words, then the kernel powering off. Kernel messages
	// of late work (the TSC's refined calibration) may come in between, so
	// the whole console is read, not only its last lines.
	b, err := os.ReadFile(inst.SerialLog())
	require.NoError(t, err)
	serial := string(b)
	bye, down := strings.Index(serial, "GUEST-BYE"), strings.LastIndex(serial, "reboot: Power down")
	assert.True(t, bye >= 0 && down > bye, "GUEST-BYE, then the power-down, on the console:\n%s", serial)
	require.NoError(t, inst.Shutdown(t.Context(), time.Second))
	assert.NoDirExists(t, inst.RunDir())
}

func TestIntegrationCancelKillsQEMU(t *testing.T) {
	requireQEMU(t)
	spec := kernelSpec(t, idleInit)
	ctx, cancel := context.WithCancel(t.Context())
	inst, err := Start(ctx, spec, WithRunRoot(testRoot(t)))
	require.NoError(t, err)
	pid := inst.PID()
	require.False(t, gone(pid))
	cancel()
	select {
	case <-inst.Exited():
	case <-time.After(15 * time.Second):
		t.Fatal("qemu still running 15s after the context was cancelled")
	}
	assert.True(t, gone(pid), "no process left in /proc")
	eventually(t, 5*time.Second, func() bool { _, err := os.Stat(inst.RunDir()); return err != nil },
		"run dir not removed after cancel")
}

func TestIntegrationStartFailureReportsStderr(t *testing.T) {
	requireQEMU(t)
	// A port in use, given explicitly: no retry, QEMU's message surfaces.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	spec := kernelSpec(t, idleInit)
	spec.Forwards = []Forward{{HostPort: l.Addr().(*net.TCPAddr).Port, GuestPort: 22}}
	root := testRoot(t)
	_, err = Start(t.Context(), spec, WithRunRoot(root))
	var ee *ExitError
	require.ErrorAs(t, err, &ee)
	assert.Contains(t, err.Error(), "Could not set up host forwarding rule")
	ents, _ := os.ReadDir(root)
	assert.Empty(t, ents, "a failed start leaves no run dir")

	// A snapshot that does not exist.
	spec = kernelSpec(t, idleInit)
	spec.LoadVM = "nope"
	spec.Disk = Drive{Path: filepath.Join(t.TempDir(), "d.qcow2")}
	_, err = runImg(t.Context(), "create", "-q", "-f", "qcow2", spec.Disk.Path, "64M")
	require.NoError(t, err)
	_, err = Start(t.Context(), spec, WithRunRoot(root))
	require.ErrorAs(t, err, &ee)
	assert.Contains(t, err.Error(), "Snapshot 'nope' does not exist")
}

func TestIntegrationRetriesWhenAFreePortIsTaken(t *testing.T) {
	requireQEMU(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	calls := 0
	freePort := func() (int, error) {
		calls++
		if calls == 1 {
			return taken, nil // another process got there first
		}
		return FreePort()
	}
	spec := kernelSpec(t, idleInit)
	spec.Forwards = []Forward{{GuestPort: 22}}
	inst, err := Start(t.Context(), spec, WithRunRoot(testRoot(t)), withFreePort(freePort))
	require.NoError(t, err)
	defer inst.Shutdown(context.Background(), 0)
	assert.Equal(t, 2, calls)
	assert.NotEqual(t, taken, inst.HostPort(22))
	assert.NotZero(t, inst.HostPort(22))
}

func TestIntegrationSaveVMAndLoadVM(t *testing.T) {
	requireQEMU(t)
	dir := t.TempDir()
	base := filepath.Join(dir, "base.qcow2")
	_, err := runImg(t.Context(), "create", "-q", "-f", "qcow2", base, "256M")
	require.NoError(t, err)
	overlay := filepath.Join(dir, "overlay.qcow2")
	require.NoError(t, CreateOverlay(t.Context(), base, "qcow2", overlay, 0))
	baseBefore, err := os.ReadFile(base)
	require.NoError(t, err)
	seed := filepath.Join(dir, "seed.img")
	require.NoError(t, os.WriteFile(seed, make([]byte, 1<<20), 0o644))

	spec := kernelSpec(t, counterInit)
	spec.Disk = Drive{Path: overlay}
	spec.Seed = seed // raw, attached read-only: must not block savevm
	spec.Forwards = []Forward{{GuestPort: 22}}
	root := testRoot(t)
	inst, err := Start(t.Context(), spec, WithRunRoot(root))
	require.NoError(t, err)
	waitConsole(t, inst, `TICK 5\b`, 2*time.Minute)
	t0 := time.Now()
	require.NoError(t, inst.SaveVM(t.Context(), "warm"))
	t.Logf("savevm took %s", time.Since(t0))
	lines, _ := console.Tail(inst.SerialLog(), 1)
	require.NoError(t, inst.Shutdown(t.Context(), 0))
	info, err := Info(t.Context(), overlay, "qcow2")
	require.NoError(t, err)
	assert.True(t, info.HasSnapshot("warm"), "%+v", info)
	baseAfter, err := os.ReadFile(base)
	require.NoError(t, err)
	assert.Equal(t, baseBefore, baseAfter, "the snapshot lives in the overlay; the base is never written")
	t.Logf("last tick before shutdown: %v", lines)

	// Resume: no kernel boot, the counter goes on from the snapshot.
	spec.LoadVM = "warm"
	t0 = time.Now()
	inst, err = Start(t.Context(), spec, WithRunRoot(root))
	require.NoError(t, err)
	defer inst.Shutdown(context.Background(), 0)
	m := waitConsole(t, inst, `TICK \d+`, time.Minute)
	t.Logf("first console line %s after start with -loadvm: %q", time.Since(t0), m.Line.Text)
	n, _ := strconv.Atoi(strings.TrimPrefix(m.Line.Text, "TICK "))
	assert.Greater(t, n, 5, "counter resumed from the snapshot")
	all, _ := os.ReadFile(inst.SerialLog())
	assert.NotContains(t, string(all), "Linux version", "a resumed guest does not boot")
	st, err := inst.Status(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "running", st)
}

func TestIntegrationSaveVMRefusedWithWritableRawDrive(t *testing.T) {
	requireQEMU(t)
	dir := t.TempDir()
	raw := filepath.Join(dir, "data.raw")
	require.NoError(t, os.WriteFile(raw, make([]byte, 1<<20), 0o644))
	overlay := filepath.Join(dir, "o.qcow2")
	_, err := runImg(t.Context(), "create", "-q", "-f", "qcow2", overlay, "64M")
	require.NoError(t, err)
	spec := kernelSpec(t, idleInit)
	spec.Disk = Drive{Path: overlay}
	spec.Drives = []Drive{{Path: raw, Format: "raw"}}
	inst, err := Start(t.Context(), spec, WithRunRoot(testRoot(t)))
	require.NoError(t, err)
	defer inst.Shutdown(context.Background(), 0)
	err = inst.SaveVM(t.Context(), "x")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is writable but does not support snapshots")
	assert.Error(t, inst.SaveVM(t.Context(), "two words"))
}

func TestIntegrationCreateOverlay(t *testing.T) {
	requireQEMU(t)
	dir := t.TempDir()
	base := filepath.Join(dir, "base.qcow2")
	_, err := runImg(t.Context(), "create", "-q", "-f", "qcow2", base, "64M")
	require.NoError(t, err)
	before, err := os.ReadFile(base)
	require.NoError(t, err)

	// A relative base path still works from another directory.
	wd, _ := os.Getwd()
	require.NoError(t, os.Chdir(dir))
	err = CreateOverlay(t.Context(), "base.qcow2", "qcow2", filepath.Join(dir, "sub-o.qcow2"), 128<<20)
	require.NoError(t, os.Chdir(wd))
	require.NoError(t, err)
	info, err := Info(t.Context(), filepath.Join(dir, "sub-o.qcow2"), "")
	require.NoError(t, err)
	assert.Equal(t, base, info.BackingFile)
	assert.Equal(t, int64(128<<20), info.VirtualSize)
	assert.Equal(t, "qcow2", info.Format)

	err = CreateOverlay(t.Context(), base, "qcow2", filepath.Join(dir, "small.qcow2"), 32<<20)
	assert.ErrorContains(t, err, "is smaller than the image's 67108864 bytes")
	err = CreateOverlay(t.Context(), filepath.Join(dir, "missing"), "qcow2", filepath.Join(dir, "x.qcow2"), 0)
	assert.ErrorIs(t, err, os.ErrNotExist)
	err = CreateOverlay(t.Context(), base, "", filepath.Join(dir, "x.qcow2"), 0)
	assert.ErrorContains(t, err, "base format must be set")

	after, err := os.ReadFile(base)
	require.NoError(t, err)
	assert.Equal(t, before, after, "the base image is never written")
}

func TestIntegrationUEFIVarsQCOW2AllowsSaveVM(t *testing.T) {
	requireQEMU(t)
	if _, err := os.Stat(OVMFVars); err != nil || catalog.HostArch() != ArchX8664 {
		t.Skip("OVMF not installed (apt-get install ovmf)")
	}
	dir := t.TempDir()
	vars := filepath.Join(dir, "efivars.qcow2")
	require.NoError(t, CreateUEFIVars(t.Context(), ArchX8664, "", vars))
	overlay := filepath.Join(dir, "o.qcow2")
	_, err := runImg(t.Context(), "create", "-q", "-f", "qcow2", overlay, "64M")
	require.NoError(t, err)
	spec := Spec{Name: "uefi", Accel: AccelTCG, CPUs: 1, MemoryBytes: 256 << 20,
		Firmware: FirmwareUEFI, FirmwareVars: vars, Disk: Drive{Path: overlay}, NoNetwork: true}
	inst, err := Start(t.Context(), spec, WithRunRoot(testRoot(t)))
	require.NoError(t, err)
	defer inst.Shutdown(context.Background(), 0)
	require.NoError(t, inst.SaveVM(t.Context(), "fw"))
	require.NoError(t, inst.Shutdown(t.Context(), 0))
	info, err := Info(t.Context(), vars, "qcow2")
	require.NoError(t, err)
	assert.True(t, info.HasSnapshot("fw"), "the vars store holds the snapshot too")
}

// TestHelperQEMUChild is not a test: the Pdeathsig test runs the test
// binary again with this one selected to start QEMU in a child process.
func TestHelperQEMUChild(t *testing.T) {
	if os.Getenv("GUESTCATALOG_QEMU_HELPER") != "1" {
		t.Skip("helper process")
	}
	var spec Spec
	require.NoError(t, json.Unmarshal([]byte(os.Getenv("GUESTCATALOG_QEMU_SPEC")), &spec))
	inst, err := Start(context.Background(), spec, WithRunRoot(os.Getenv("GUESTCATALOG_QEMU_ROOT")))
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	fmt.Printf("STARTED %d %s\n", inst.PID(), inst.RunDir())
	select {} // wait to be killed
}

func TestIntegrationParentKilledTakesQEMUAlong(t *testing.T) {
	requireQEMU(t)
	spec := kernelSpec(t, idleInit)
	b, err := json.Marshal(spec)
	require.NoError(t, err)
	root := testRoot(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperQEMUChild$", "-test.v")
	cmd.Env = append(os.Environ(), "GUESTCATALOG_QEMU_HELPER=1",
		"GUESTCATALOG_QEMU_SPEC="+string(b), "GUESTCATALOG_QEMU_ROOT="+root)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()
	var qemuPID int
	var runDir string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "STARTED" {
			qemuPID, _ = strconv.Atoi(f[1])
			runDir = f[2]
			break
		}
		if strings.HasPrefix(sc.Text(), "ERR") {
			t.Fatal(sc.Text())
		}
	}
	require.NotZero(t, qemuPID, "child did not start qemu")
	require.False(t, gone(qemuPID))
	go func() {
		for sc.Scan() {
		}
	}()

	// The parent dies without any cleanup.
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	cmd.Wait()
	eventually(t, 10*time.Second, func() bool { return gone(qemuPID) }, "qemu outlived its SIGKILLed parent")

	// Its run dir is left behind, owned by a dead process: Gc removes it.
	require.DirExists(t, runDir)
	res, err := Gc(t.Context(), GcRoot(root))
	require.NoError(t, err)
	require.Len(t, res.Removed, 1)
	assert.Equal(t, runDir, res.Removed[0].Dir)
	assert.Contains(t, res.Removed[0].Reason, "is gone")
	assert.NoDirExists(t, runDir)
}

func TestIntegrationGcKillsLeftoverQEMU(t *testing.T) {
	requireQEMU(t)
	root := testRoot(t)
	stale := writeOwner(t, root, "stale", Owner{CreatedBy: CreatedBy, BootID: bootID(), PID: deadPID(t), PIDStart: 1})
	// A QEMU left running without supervision, naming the stale run dir.
	q := exec.Command(Binary(catalog.HostArch()), "-machine", "none", "-nodefaults", "-display", "none",
		"-pidfile", filepath.Join(stale, "qemu.pid"))
	require.NoError(t, q.Start())
	defer q.Process.Kill()
	waited := make(chan struct{})
	go func() { q.Wait(); close(waited) }()
	eventually(t, 10*time.Second, func() bool { return fileExists(filepath.Join(stale, "qemu.pid")) }, "qemu did not start")
	// An unrelated QEMU (another run root) must survive.
	other := t.TempDir()
	q2 := exec.Command(Binary(catalog.HostArch()), "-machine", "none", "-nodefaults", "-display", "none",
		"-pidfile", filepath.Join(other, "qemu.pid"))
	require.NoError(t, q2.Start())
	defer func() { q2.Process.Kill(); q2.Wait() }()

	dry, err := Gc(t.Context(), GcRoot(root), GcDryRun(true))
	require.NoError(t, err)
	require.Len(t, dry.Removed, 1)
	assert.Equal(t, []int{q.Process.Pid}, dry.Removed[0].Killed)
	assert.DirExists(t, stale)
	assert.False(t, gone(q.Process.Pid), "a dry run kills nothing")

	res, err := Gc(t.Context(), GcRoot(root))
	require.NoError(t, err)
	require.Len(t, res.Removed, 1)
	assert.Equal(t, []int{q.Process.Pid}, res.Removed[0].Killed)
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("leftover qemu not killed")
	}
	assert.NoDirExists(t, stale)
	assert.False(t, gone(q2.Process.Pid), "qemu of another run root untouched")
}

func TestIntegrationLaunchAuto(t *testing.T) {
	requireQEMU(t)
	spec := kernelSpec(t, idleInit)
	logs := t.TempDir()
	t0 := time.Now()
	inst, dec, err := Launch(t.Context(), spec, AccelAuto, WithRunRoot(testRoot(t)), WithLogDir(logs))
	require.NoError(t, err)
	defer inst.Shutdown(context.Background(), 0)
	t.Logf("auto: %+v (decided in %s)", dec, time.Since(t0))
	assert.Equal(t, AccelAuto, dec.Requested)
	assert.Equal(t, dec.Used, inst.Spec().Accel)
	assert.NotEmpty(t, dec.Reason)
	if kerr := KVMUsable(""); kerr != nil {
		assert.Equal(t, []string{AccelTCG}, dec.Tried)
		assert.Contains(t, dec.Reason, "kvm unusable")
	} else if dec.Used == AccelTCG {
		assert.Equal(t, []string{AccelKVM, AccelTCG}, dec.Tried)
		assert.Contains(t, dec.Reason, "fell back to tcg")
		assert.FileExists(t, filepath.Join(logs, "qemu-kvm.log"))
	}
	waitConsole(t, inst, `GUEST-READY`, 2*time.Minute)
}

func TestIntegrationLaunchAutoFallsBackOnConsoleStall(t *testing.T) {
	requireQEMU(t)
	if err := KVMUsable(""); err != nil {
		t.Skipf("KVM unusable here (%v): no stall to detect", err)
	}
	// With -cpu qemu64 (not host), nested KVM here does not abort: the
	// guest spins silently. Wherever KVM works, the kernel prints and
	// Launch keeps KVM; both are correct outcomes.
	spec := kernelSpec(t, idleInit)
	spec.CPU = "qemu64"
	logs := t.TempDir()
	inst, dec, err := Launch(t.Context(), spec, AccelAuto, WithRunRoot(testRoot(t)), WithLogDir(logs), WithKVMStall(8*time.Second))
	require.NoError(t, err)
	defer inst.Shutdown(context.Background(), 0)
	t.Logf("auto with -cpu qemu64: %+v", dec)
	if dec.Used == AccelTCG {
		assert.Equal(t, []string{AccelKVM, AccelTCG}, dec.Tried)
		assert.Regexp(t, `^kvm: (no console (progress past firmware|output) in 8s|qemu exited).*; fell back to tcg$`, dec.Reason)
		assert.FileExists(t, filepath.Join(logs, "serial-kvm.log"))
		assert.GreaterOrEqual(t, dec.KVMAttempt, 8*time.Second)
	}
	waitConsole(t, inst, `GUEST-READY`, 2*time.Minute)
	b, _ := os.ReadFile(filepath.Join(logs, SerialLogName))
	assert.Contains(t, string(b), "Linux version", "the TCG run has a fresh serial log")
}

func TestIntegrationProbe(t *testing.T) {
	requireQEMU(t)
	k := qemutest.Kernel(t)
	root := testRoot(t)
	r, err := Probe(t.Context(), ProbeInput{Accel: AccelTCG, Kernel: k.Kernel, Options: []Option{WithRunRoot(root)}})
	require.NoError(t, err)
	t.Logf("tcg kernel probe: %+v", r)
	assert.True(t, r.OK, r.Detail)
	assert.Positive(t, r.KernelAt)

	if catalog.HostArch() == ArchX8664 {
		r, err = Probe(t.Context(), ProbeInput{Accel: AccelTCG, Options: []Option{WithRunRoot(root)}})
		require.NoError(t, err)
		t.Logf("tcg firmware probe: %+v", r)
		assert.True(t, r.OK, r.Detail)
	}

	rep, err := ProbeAccel(t.Context(), ProbeInput{Kernel: k.Kernel, Options: []Option{WithRunRoot(root)}})
	require.NoError(t, err)
	for _, p := range rep.Probes {
		t.Logf("probe %s/%s ok=%v elapsed=%s kernelAt=%s: %s", p.Accel, p.Method, p.OK, p.Elapsed, p.KernelAt, p.Detail)
	}
	t.Logf("verdict %s: %s", rep.Verdict, rep.Reason)
	assert.NotEmpty(t, rep.Verdict)
	ents, _ := os.ReadDir(root)
	assert.Empty(t, ents, "probes leave no run dirs")
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// A guest whose RAM is a shared memory file is saved as a device state of
// well under a MB (SaveState, x-ignore-shared); a new QEMU maps that RAM
// copy-on-write (Incoming) and goes on counting from where it stopped,
// and the saved RAM file is not written.
func TestIntegrationSaveStateAndLoadState(t *testing.T) {
	requireQEMU(t)
	dir := t.TempDir()
	spec := kernelSpec(t, counterInit)
	spec.MemoryBytes = 128 << 20
	spec.MemoryFile, spec.MemoryShared = filepath.Join(dir, "ram"), true
	root := testRoot(t)
	inst, err := Start(t.Context(), spec, WithRunRoot(root))
	require.NoError(t, err)
	waitConsole(t, inst, `TICK 5\b`, 2*time.Minute)
	_, err = inst.Execute(t.Context(), "stop", nil)
	require.NoError(t, err)
	state := filepath.Join(dir, "state, 1.bin") // a comma and a space reach cat quoted
	st, err := inst.SaveState(t.Context(), state)
	require.NoError(t, err)
	require.NoError(t, inst.Shutdown(t.Context(), 0))
	fi, err := os.Stat(state)
	require.NoError(t, err)
	t.Logf("state: %d bytes in %d ms", fi.Size(), st.TotalTime)
	assert.Less(t, fi.Size(), int64(16<<20), "the RAM stays out of the stream")
	ram, err := os.Stat(spec.MemoryFile)
	require.NoError(t, err)

	spec.MemoryShared, spec.Incoming = false, true
	inst, err = Start(t.Context(), spec, WithRunRoot(root))
	require.NoError(t, err)
	defer inst.Shutdown(context.Background(), 0)
	_, err = inst.LoadState(t.Context(), state)
	require.NoError(t, err)
	require.NoError(t, inst.Continue(t.Context()))
	m := waitConsole(t, inst, `TICK \d+`, time.Minute)
	n, _ := strconv.Atoi(strings.TrimPrefix(m.Line.Text, "TICK "))
	assert.Greater(t, n, 5, "counter resumed from the saved state")
	all, _ := os.ReadFile(inst.SerialLog())
	assert.NotContains(t, string(all), "Linux version", "a resumed guest does not boot")
	after, err := os.Stat(spec.MemoryFile)
	require.NoError(t, err)
	assert.Equal(t, ram.ModTime(), after.ModTime(), "the saved RAM is mapped copy-on-write")

	// A state QEMU cannot load fails with ErrMigration, not a hang.
	bad := filepath.Join(dir, "bad.bin")
	require.NoError(t, os.WriteFile(bad, []byte("not a migration stream"), 0o644))
	inst2, err := Start(t.Context(), spec, WithRunRoot(root))
	require.NoError(t, err)
	defer inst2.Shutdown(context.Background(), 0)
	_, err = inst2.LoadState(t.Context(), bad)
	require.ErrorIs(t, err, ErrMigration)
}
