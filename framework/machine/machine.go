package machine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/cloudinit"
	"github.com/guestcatalog/guestcatalog/framework/console"
	"github.com/guestcatalog/guestcatalog/framework/exec"
	"github.com/guestcatalog/guestcatalog/framework/intervals"
	"github.com/guestcatalog/guestcatalog/framework/netpolicy"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
	"github.com/guestcatalog/guestcatalog/framework/sshx"
)

// Interval names the machine reads (framework/intervals).
const (
	IntervalKernel    = "default/wait-kernel"
	IntervalUserspace = "default/wait-userspace"
	IntervalSSH       = "default/wait-ssh"
	IntervalCloudInit = "default/wait-cloud-init"
	IntervalProbe     = "default/probe"
	IntervalShutdown  = "default/shutdown"
)

// Config says what to start.
type Config struct {
	// Template is the resolved template (catalog.Resolve).
	Template *catalog.Template
	// Image is the disk to boot (from framework/image's Artifact).
	Image Image
	// Arch of the guest; default the host's.
	Arch string
	// Accel: auto (default), kvm or tcg.
	Accel string
	// ArtifactsDir receives this machine's artifacts (created). Default: a
	// new directory under os.TempDir().
	ArtifactsDir string
	// Intervals: named timeouts; default intervals.Default().
	Intervals *intervals.Set
	// Logger receives phase progress; default silent.
	Logger *slog.Logger
	// KeepOnFailure leaves a guest that failed to become ready running
	// (Start returns it with the error; the error says how to log in).
	KeepOnFailure bool
	// RunRoot is where the run directory is made ("" : qemu.DefaultRunRoot()).
	RunRoot string
	// KeepRunDir keeps the run directory (overlay, seed, sockets) on Close.
	KeepRunDir bool
	// Name identifies the machine (run dir, logs); default the template
	// name and a random suffix.
	Name string
	// SkipProbes stops readiness after cloud-init (callers that run the
	// probes themselves, as specs).
	SkipProbes bool
	// CPU overrides QEMU's CPU model ("" : framework/qemu's default for
	// the accelerator). With accel auto it applies to both attempts.
	CPU string
	// KernelArgs are appended to the image's kernel command line (direct
	// kernel boot only).
	KernelArgs []string
	// Resume starts from a ready guest saved with Snapshot instead of
	// booting and provisioning (see resume.go).
	Resume *Resume
	// ExtraAuthorizedKeys may log in too (a developer's own key).
	ExtraAuthorizedKeys []string
	// Detached starts QEMU so that Detach can leave it running after this
	// process exits (see qemu.WithDetached). Until Detach the machine is
	// supervised as usual. It needs its own RunRoot: qemu.Gc removes run
	// dirs under the run root whose creator has exited.
	Detached bool

	// ProxyAddr, for a template with egress proxy, is an egress proxy
	// already serving (host:port on the host's loopback: the detached
	// helper of an instance, framework/instance): the guest's forward
	// targets it and the machine starts no proxy of its own (Proxy is nil).
	ProxyAddr string

	// RetryInfra retries a start that failed before the guest's userspace
	// ran (see InfraFailure) once, with a fresh overlay; the machine then
	// reports the failed attempt (Attempts, Flaky). Failures from
	// userspace on are never retried. Not for resumes.
	RetryInfra bool
	// ArtifactDrive is the template's artifacts drive (framework/artifacts):
	// an ISO attached read-only after the other disks, fresh and resumed
	// alike (a snapshot's device set must not change). "" : none.
	ArtifactDrive string
	// Home replaces ~ in mount locations; default the user's home (sandbox.go).
	Home string
	// ExtraQEMUArgs are appended to QEMU's command line (after every
	// device of the saved set, so a resumed guest keeps its device
	// addresses): framework/instance exports --mount shares with them.
	ExtraQEMUArgs []string
	// Saveable keeps guest RAM in a shared memory file (on /dev/shm when
	// there is one) so that Save can keep the ready guest: its RAM is that
	// file, and the migration stream holds only the device state. Set it
	// on a boot that is going to be saved: a resume needs the same device
	// and memory set.
	Saveable bool
	// InsecureHostWritable exports read-only mounts writable on the host
	// (the guest still mounts them ro): only for tests that show the
	// isolation suite catches a mount that is read-only in the guest only.
	InsecureHostWritable bool

	// OnEvent, if set, is called as each phase starts and ends and as the
	// guest reports each provisioning step (from its console), for live
	// progress. It must not block; it is called from several goroutines,
	// never concurrently for one machine's phases.
	OnEvent func(Event)

	// onLaunch is called once QEMU runs (tests).
	onLaunch func(*Machine)
	// attemptHook may change the config of attempt n (1, 2, ...) (tests).
	attemptHook func(n int, cfg *Config)
	// infraRetries is how many times RetryInfra retries (0: once). A test
	// that makes attempt 1 fail on purpose takes 2, so that a real flaky
	// boot on attempt 2 does not fail it.
	infraRetries int
}

// Machine is a started guest. Close it (idempotent); its QEMU also dies
// with the process that started it (Pdeathsig).
type Machine struct {
	cfg       Config
	name      string
	logger    *slog.Logger
	ivals     *intervals.Set
	artifacts string
	runDir    string
	origin    time.Time

	clientKey *sshx.KeyPair
	hostKey   *sshx.HostKey
	seed      *cloudinit.Seed
	sshPort   int

	rd        *qemu.RunDir
	vm        *qemu.Instance
	accel     qemu.AccelDecision
	bootStart time.Time
	// life bounds QEMU: cancelled by Close (and by Start's ctx during Start).
	life       context.Context
	lifeCancel context.CancelFunc

	mon       *monitor
	eng       *engine
	stopWatch context.CancelFunc
	watchDone <-chan struct{}
	ssh       *sshx.Client
	// clockAtLogin: Save installed the clock hook (ClockAtLogin).
	clockAtLogin bool
	cloudStatus  *CloudInitStatus

	mounts []SandboxMount
	proxy  *netpolicy.Proxy
	// ramFile backs guest RAM of a Saveable machine (removed on stop).
	ramFile string

	closeOnce sync.Once
	closeErr  error
	collected bool
	// attempts are the failed attempts before this one (RetryInfra).
	attempts []Attempt
}

// Start prepares and boots a guest and waits until it is ready: phases
// prepare, launch, kernel, userspace, ssh, cloud-init, probes. Each phase
// has its own timeout (boot phases count from QEMU's start) and is timed
// into phases.json.
//
// With cfg.RetryInfra, a failure before userspace is retried once (see
// InfraFailure, Attempts).
//
// On failure the error is a *PhaseError. Start has then collected the
// artifacts and cleaned up, unless cfg.KeepOnFailure: the guest is left
// running and the returned *Machine (non-nil whenever QEMU started) must
// be closed by the caller. The returned *Machine is non-nil on failure
// too once preparation began, for Phases() and ArtifactsDir().
func Start(ctx context.Context, cfg Config) (*Machine, error) {
	return startWithRetry(ctx, cfg)
}

// startOnce is one start attempt.
func startOnce(ctx context.Context, cfg Config) (*Machine, error) {
	m, err := newMachine(cfg)
	if err != nil {
		return nil, err
	}
	// While Start runs, its ctx bounds the machine; afterwards only Close.
	m.life, m.lifeCancel = context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, m.lifeCancel)
	err = m.start(ctx)
	stop()
	if err != nil {
		return m, m.fail(ctx, err)
	}
	return m, nil
}

func newMachine(cfg Config) (*Machine, error) {
	if cfg.Template == nil {
		return nil, errors.New("machine.Start: Config.Template is nil")
	}
	if cfg.Image.Disk == "" {
		return nil, fmt.Errorf("machine.Start %s: Config.Image.Disk is empty", cfg.Template.Name)
	}
	if cfg.Template.User == nil || cfg.Template.User.Name == "" {
		return nil, fmt.Errorf("machine.Start %s: template has no user (is it resolved?)", cfg.Template.Name)
	}
	if cfg.Arch == "" {
		cfg.Arch = catalog.HostArch()
	}
	switch cfg.Accel {
	case "":
		cfg.Accel = qemu.AccelAuto
	case qemu.AccelAuto, qemu.AccelKVM, qemu.AccelTCG:
	default:
		return nil, fmt.Errorf("machine.Start %s: Config.Accel %q: want auto, kvm or tcg", cfg.Template.Name, cfg.Accel)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ivals := cfg.Intervals
	if ivals == nil {
		var err error
		if ivals, err = intervals.Default(); err != nil {
			return nil, fmt.Errorf("machine.Start %s: %w", cfg.Template.Name, err)
		}
	}
	// A foreign-arch guest (aarch64 on an x86_64 host) is translated by
	// TCG instruction by instruction: its intervals carry the measured
	// foreign factor on top of the accelerator's scale.
	ivals = ivals.ForGuest(cfg.Arch, catalog.HostArch())
	name := cfg.Name
	if name == "" {
		var b [3]byte
		_, _ = rand.Read(b[:])
		name = strings.ReplaceAll(cfg.Template.Name, "/", "-") + "-" + hex.EncodeToString(b[:])
	}
	artifacts := cfg.ArtifactsDir
	if artifacts == "" {
		d, err := os.MkdirTemp("", "guestcatalog-"+name+"-")
		if err != nil {
			return nil, fmt.Errorf("creating artifacts dir: %w", err)
		}
		artifacts = d
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		return nil, fmt.Errorf("creating artifacts dir: %w", err)
	}
	if abs, err := filepath.Abs(artifacts); err == nil {
		artifacts = abs
	}
	m := &Machine{
		cfg: cfg, name: name, logger: logger.With("machine", name), ivals: ivals,
		artifacts: artifacts, origin: time.Now(), mon: newMonitor(),
	}
	m.eng = newEngine(m.origin, m.mon, m.logger)
	m.eng.onEvent = m.emit
	m.mon.onStep = m.emit
	m.eng.onUpdate = func(ts []PhaseTiming) {
		if err := writeJSON(filepath.Join(m.artifacts, ArtifactPhases), ts); err != nil {
			m.logger.Warn("writing phases.json", "err", err)
		}
	}
	return m, nil
}

func (m *Machine) start(ctx context.Context) error {
	t := m.cfg.Template
	if err := m.eng.run(ctx, phase{name: PhasePrepare, hint: "the host side of the run failed: disk space, qemu-img, the template's seed",
		run: m.prepare}); err != nil {
		return err
	}
	if err := m.eng.run(ctx, phase{name: PhaseLaunch, hint: "QEMU did not start: see qemu-argv.txt and the QEMU error above",
		run: m.launch}); err != nil {
		return err
	}
	m.eng.bootStart = m.bootStart
	accel := m.accel.Used
	get := func(name string) time.Duration {
		d, err := m.ivals.Get(name, accel)
		if err != nil {
			m.logger.Warn("interval", "name", name, "err", err)
			return 10 * time.Minute
		}
		return d
	}
	if m.cfg.Resume != nil {
		// A resumed guest is ready as it was saved: no kernel, no init, no
		// cloud-init to wait for. Its device state is loaded (RAM comes in
		// by page faults from the saved memory file), it runs on, and SSH
		// answers at once.
		if err := m.eng.run(ctx, phase{name: PhaseLoad, deadline: m.bootStart.Add(get(IntervalSSH)),
			hint: "QEMU did not load the saved guest's state: the saved guest may not match this QEMU or its device set (see qemu.log); run with --no-reuse",
			run:  m.loadState}); err != nil {
			return err
		}
		if err := m.eng.run(ctx, phase{name: PhaseSSH, deadline: m.bootStart.Add(get(IntervalSSH)),
			hint: "the resumed guest did not answer SSH: the saved guest may not match this QEMU (see qemu.log); run with --no-reuse",
			run:  m.waitResumedSSH}); err != nil {
			return err
		}
		if err := m.eng.run(ctx, phase{name: PhaseResume, hint: "the resumed guest did not take the host's time", run: m.syncClock}); err != nil {
			return err
		}
		if m.cfg.SkipProbes {
			return nil
		}
		return m.runProbes(ctx, t)
	}
	boot := []phase{
		{name: PhaseKernel, deadline: m.bootStart.Add(get(IntervalKernel)),
			hint: kernelHint(m.cfg.Image),
			run:  consolePhase(m.mon, console.KernelStarted().Name)},
		{name: PhaseUserspace, deadline: m.bootStart.Add(get(IntervalUserspace)),
			hint: "the kernel started but init did not: check root= in the kernel command line (" + m.cfg.Image.Append + "), the initrd's drivers for the root disk, and the console lines above",
			run:  consolePhase(m.mon, initStarted().Name)},
		{name: PhaseSSH, deadline: m.bootStart.Add(get(IntervalSSH)),
			hint: "sshd did not accept the pinned host key and client key: check the guest network (cloud-init network-config, DHCP), that cloud-init ran (NoCloud seed found, ssh_keys installed) and sshd's state in journal.txt",
			run:  m.waitSSH},
		{name: PhaseCloudInit, deadline: m.bootStart.Add(get(IntervalCloudInit)),
			hint: "see provision.log, cloud-init-output.log and cloud-init.log in the artifacts",
			run:  m.waitCloudInit},
	}
	for _, p := range boot {
		if err := m.eng.run(ctx, p); err != nil {
			return err
		}
	}
	if m.cfg.SkipProbes {
		return nil
	}
	return m.runProbes(ctx, t)
}

func kernelHint(img Image) string {
	if img.Kernel != "" {
		return "no kernel output on the serial console: check the kernel (" + img.Kernel + ") and that the command line has console=ttyS0; under KVM see accel.json"
	}
	return "no kernel output on the serial console: the firmware or bootloader did not start a kernel (wrong firmware bios/uefi? no console=ttyS0 in the image's kernel command line?); under KVM see accel.json"
}

// prepare makes the run dir, keys, seed and overlay (host side only).
func (m *Machine) prepare(ctx context.Context) (string, error) {
	t := m.cfg.Template
	if !m.cfg.SkipProbes {
		if err := checkProbeIntervals(m.ivals, t.ProbesFor(m.cfg.Arch)); err != nil {
			return "", err
		}
	}
	if err := m.newRunDir(); err != nil {
		return "", err
	}
	if m.cfg.Resume != nil {
		return m.prepareResume(ctx)
	}
	if m.cfg.Saveable {
		m.ramFile = qemu.MemoryFileFor(m.rd.Path())
	}
	keyDir := m.rd.File("ssh")
	var err error
	if m.clientKey, err = sshx.NewKeyPair(keyDir, "guestcatalog-"+m.name); err != nil {
		return "", err
	}
	if m.hostKey, err = sshx.NewHostKey("guestcatalog-" + m.name + "-host"); err != nil {
		return "", err
	}
	img := catalog.Image{Arch: m.cfg.Arch, Firmware: m.cfg.Image.Firmware}
	if e := m.cfg.Image.Entry; e != nil {
		img = *e
	} else if m.cfg.Image.Kernel != "" {
		for _, im := range t.ImagesFor(m.cfg.Arch) {
			if im.Build != nil {
				img = im // a built image: its recipe says whether packages are baked
				break
			}
		}
	}
	keys := append([]string{m.clientKey.AuthorizedKey}, m.cfg.ExtraAuthorizedKeys...)
	m.seed, err = cloudinit.Render(t, cloudinit.Input{
		Arch:              m.cfg.Arch,
		Image:             img,
		AuthorizedKeys:    keys,
		HostKeyPrivatePEM: m.hostKey.PrivatePEM,
		HostKeyPublic:     m.hostKey.PublicLine,
	})
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(m.artifacts, ArtifactUserData), m.seed.UserData, 0o600); err != nil {
		return "", fmt.Errorf("writing user-data artifact: %w", err)
	}
	return m.prepareDisks(ctx)
}

// waitSSH dials until sshd answers with the pinned host key.
func (m *Machine) waitSSH(ctx context.Context) (string, error) {
	return m.dialSSH(ctx, 200*time.Millisecond)
}

func (m *Machine) dialSSH(ctx context.Context, retry time.Duration) (string, error) {
	addr := fmt.Sprintf("127.0.0.1:%d", m.sshPort)
	c, err := sshx.WaitDial(ctx, addr, m.cfg.Template.User.Name, m.clientKey.Signer, m.hostKey.PublicKey, sshx.Options{
		Logger:        m.logger,
		RetryInterval: retry,
		IdentityFile:  m.clientKey.PrivateKeyPath,
	})
	if err != nil {
		return "", err
	}
	m.ssh = c
	cmd := c.SSHCommand()
	_ = os.WriteFile(filepath.Join(m.artifacts, ArtifactSSHCommand), []byte(cmd+"\n"), 0o644)
	return "ssh " + addr + " as " + m.cfg.Template.User.Name, nil
}

// waitCloudInit waits in the guest for cloud-init's final result and the
// provisioning marker.
func (m *Machine) waitCloudInit(ctx context.Context) (string, error) {
	maxWait := time.Hour
	st, err := waitCloudInit(ctx, m.ssh, maxWait)
	if st != nil {
		m.cloudStatus = st
		_ = writeJSON(filepath.Join(m.artifacts, ArtifactCloudInitState), st)
	}
	if err != nil {
		return "", err
	}
	if perr := st.Problem(); perr != nil {
		if tail := m.provisionTail(ctx); tail != "" {
			return "", fmt.Errorf("%w\nprovision.log (last lines):\n    %s", perr, strings.ReplaceAll(tail, "\n", "\n    "))
		}
		return "", perr
	}
	detail := "cloud-init " + st.Status
	if s := st.RecoverableSummary(); s != "" {
		detail += " (" + s + ")"
	}
	return detail, nil
}

func (m *Machine) provisionTail(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	res, err := m.ssh.Run(ctx, exec.Cmd{Script: "tail -n 30 " + exec.Quote(cloudinit.LogPath), Sudo: true})
	if err != nil && len(res.Stdout) == 0 {
		return ""
	}
	return strings.TrimRight(string(res.Stdout), "\n")
}

// Runner is the guest's command runner (the SSH client); nil before the
// ssh phase succeeded.
func (m *Machine) Runner() exec.Runner {
	if m.ssh == nil {
		return nil
	}
	return m.ssh
}

// SSH is the guest's SSH client (nil before the ssh phase succeeded).
func (m *Machine) SSH() *sshx.Client { return m.ssh }

// SSHCommand is an `ssh` command line to log into the guest, pinned to
// its host key ("" before the ssh phase).
func (m *Machine) SSHCommand() string {
	if m.ssh != nil {
		return m.ssh.SSHCommand()
	}
	if m.clientKey != nil && m.hostKey != nil && m.sshPort != 0 {
		addr := fmt.Sprintf("127.0.0.1:%d", m.sshPort)
		kh := filepath.Join(filepath.Dir(m.clientKey.PrivateKeyPath), "known_hosts")
		if err := sshx.WriteKnownHosts(kh, addr, m.hostKey.PublicKey); err == nil {
			return sshx.SSHCommand(addr, m.cfg.Template.User.Name, m.clientKey.PrivateKeyPath, kh, m.hostKey.PublicKey)
		}
	}
	return ""
}

// Name is the machine's name.
func (m *Machine) Name() string { return m.name }

// Template is the template the machine runs.
func (m *Machine) Template() *catalog.Template { return m.cfg.Template }

// Phases returns the phase timings so far.
func (m *Machine) Phases() []PhaseTiming { return m.eng.Timings() }

// ArtifactsDir is where the machine's artifacts are.
func (m *Machine) ArtifactsDir() string { return m.artifacts }

// CloudInit is what the cloud-init phase read (nil before it).
func (m *Machine) CloudInit() *CloudInitStatus { return m.cloudStatus }

// SSHPort is the host port forwarded to the guest's port 22.
func (m *Machine) SSHPort() int { return m.sshPort }

// fail turns a phase failure into a *PhaseError, collects the artifacts
// and, unless KeepOnFailure, stops the guest and cleans up.
func (m *Machine) fail(ctx context.Context, err error) error {
	pe := &PhaseError{Template: m.cfg.Template.Name, Err: err, ArtifactsDir: m.artifacts, Elapsed: time.Since(m.origin)}
	var pf *phaseFailure
	if errors.As(err, &pf) {
		pe.Phase, pe.Hint, pe.Err = pf.phase, pf.hint, pf.err
	}
	if pe.Phase == PhaseProbes {
		var probeErr *ProbeError
		if errors.As(pe.Err, &probeErr) && probeErr.Hint != "" {
			pe.Hint = probeErr.Hint
		}
	}
	// An interrupted start (ctx ended: Ctrl-C) keeps nothing and has no
	// time to spend: the CLI exits within a second, and a detached QEMU
	// not yet handed over must be gone by then. No console wait, no log
	// collection, no ACPI powerdown: SIGKILL at once (Discard).
	if ctx.Err() != nil && !m.cfg.KeepOnFailure {
		if derr := m.Discard(context.WithoutCancel(ctx)); derr != nil {
			m.logger.Warn("cleanup after an interrupted start", "err", derr)
		}
		return pe
	}
	// The console tail: wait for the watcher to read the file to its end
	// when QEMU is gone, so the last lines (the panic) are in it.
	if m.watchDone != nil && m.vm != nil {
		select {
		case <-m.vm.Exited():
			select {
			case <-m.watchDone:
			case <-time.After(2 * time.Second):
			}
		default:
		}
	}
	if lines, terr := console.Tail(filepath.Join(m.artifacts, ArtifactSerial), 30); terr == nil {
		pe.ConsoleTail = strings.Join(lines, "\n")
	}
	if pe.Phase == PhaseLaunch || errors.Is(pe.Err, ErrQEMUExited) {
		if lines, _ := console.Tail(filepath.Join(m.artifacts, qemu.QEMULogName), 10); len(lines) > 0 {
			pe.QEMULog = strings.Join(lines, "\n")
		}
	}
	cctx := context.WithoutCancel(ctx)
	if m.cfg.KeepOnFailure && m.vm != nil {
		m.collect(cctx)
		if cmd := m.SSHCommand(); cmd != "" {
			pe.Hint = strings.TrimSpace(pe.Hint + "\nthe guest is kept running (KeepOnFailure); log in with:\n    " + cmd)
		}
		return pe
	}
	if cerr := m.Close(cctx); cerr != nil {
		m.logger.Warn("cleanup after failure", "err", cerr)
	}
	return pe
}

// collect copies the guest's logs into the artifacts dir, once, if the
// guest is reachable over SSH.
func (m *Machine) collect(ctx context.Context) {
	if m.collected || m.ssh == nil || m.ssh.Err() != nil {
		return
	}
	m.collected = true
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := collectGuestArtifacts(ctx, m.ssh, m.artifacts); err != nil {
		m.logger.Warn("collecting guest artifacts", "err", err)
	}
}

// Close collects the guest's logs (when reachable), powers the guest down
// (ACPI with a deadline, then quit, then kill), and removes the overlay
// and the run directory (unless KeepRunDir). Idempotent; safe to call from
// several goroutines.
func (m *Machine) Close(ctx context.Context) error { return m.stop(ctx, true) }

// stop ends the machine once: gracefully (guest logs collected, ACPI
// powerdown within the shutdown interval) or at once (Discard).
func (m *Machine) stop(ctx context.Context, graceful bool) error {
	m.closeOnce.Do(func() {
		var errs []error
		var grace time.Duration
		if graceful {
			m.collect(ctx)
			var err error
			if grace, err = m.ivals.Get(IntervalShutdown, m.accel.Used); err != nil {
				grace = time.Minute
			}
		}
		if m.ssh != nil {
			m.ssh.Close()
		}
		if m.vm != nil && !graceful {
			// Nothing in a discarded guest is kept: SIGKILL at once
			// rather than a QMP quit and its reply.
			m.vm.Kill()
		}
		if m.vm != nil {
			if err := m.vm.Shutdown(ctx, grace); err != nil {
				errs = append(errs, fmt.Errorf("stopping qemu: %w", err))
			}
		}
		if m.stopWatch != nil {
			m.stopWatch()
		}
		if m.lifeCancel != nil {
			m.lifeCancel()
		}
		if err := m.closeSandbox(); err != nil {
			errs = append(errs, fmt.Errorf("stopping the proxy: %w", err))
		}
		if m.ramFile != "" {
			if err := os.Remove(m.ramFile); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("removing the memory file: %w", err))
			}
		}
		if m.runDir != "" && !m.cfg.KeepRunDir {
			if err := os.RemoveAll(m.runDir); err != nil {
				errs = append(errs, fmt.Errorf("removing run dir: %w", err))
			}
		}
		m.closeErr = errors.Join(errs...)
	})
	return m.closeErr
}
