package machine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/guestcatalog/guestcatalog/cloudinit"
	"github.com/guestcatalog/guestcatalog/framework/console"
	"github.com/guestcatalog/guestcatalog/framework/exec"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
)

// Files in the run dir (removed on Close unless KeepRunDir).
const (
	overlayName = "disk.qcow2"
	seedName    = "seed.iso"
)

// newRunDir makes the machine's run dir under qemu's run root: it holds
// the overlay, the seed, the keys and QEMU's socket, and its owner.json
// lets qemu.Gc remove it (and kill its QEMU) after a crashed run.
func (m *Machine) newRunDir() error {
	rd, err := qemu.NewRunDir(m.cfg.RunRoot, m.name)
	if err != nil {
		return err
	}
	m.rd = rd
	m.runDir = rd.Path()
	return nil
}

// prepareDisks writes the seed and creates the overlay, sized to the
// template's disk (never smaller than the image).
func (m *Machine) prepareDisks(ctx context.Context) (string, error) {
	img := m.cfg.Image
	// The last gate before QEMU, whatever the image's origin (downloaded,
	// built, named by the caller): a standalone qcow2 or raw file in the
	// declared format.
	info, err := qemu.Inspect(ctx, img.Disk, img.Format)
	if err != nil {
		return "", err
	}
	format := info.Format
	seedPath := m.rd.File(seedName)
	if err := cloudinit.WriteSeedISO(seedPath, m.seed); err != nil {
		return "", fmt.Errorf("writing seed: %w", err)
	}
	size := m.cfg.Template.DiskBytes()
	if size < info.VirtualSize {
		m.logger.Info("template disk smaller than the image; keeping the image's size", "disk", size, "image", info.VirtualSize)
		size = 0
	}
	overlay := m.rd.File(overlayName)
	if err := qemu.CreateOverlay(ctx, img.Disk, format, overlay, size); err != nil {
		return "", err
	}
	return "overlay " + overlay, nil
}

// launch starts QEMU with the accelerator (auto: KVM if the guest makes
// progress under it, else TCG), its logs going to the artifacts dir.
func (m *Machine) launch(ctx context.Context) (string, error) {
	t := m.cfg.Template
	img := m.cfg.Image
	cpus := 2
	if t.CPUs != nil {
		cpus = *t.CPUs
	}
	spec := qemu.Spec{
		Name:        m.name,
		Arch:        m.cfg.Arch,
		CPU:         m.cfg.CPU,
		CPUs:        cpus,
		MemoryBytes: t.MemoryBytes(),
		Firmware:    img.Firmware,
		Kernel:      img.Kernel,
		Initrd:      img.Initrd,
		Append:      strings.TrimSpace(img.Append + " " + strings.Join(m.cfg.KernelArgs, " ")),
		Disk:        qemu.Drive{Path: m.rd.File(overlayName), Format: "qcow2"},
		Seed:        m.rd.File(seedName),
		Forwards:    []qemu.Forward{{GuestPort: 22}},
		// A reboot (or a panic with panic=-1) ends QEMU: seen at once.
		NoReboot: true,
	}
	if img.Kernel != "" {
		// qemu.Cmdline gives the root disk bootindex=0, which -kernel
		// already holds on x86 (QEMU refuses to start): attach the overlay
		// as a plain drive. Root is found by label, not by position.
		spec.Drives = []qemu.Drive{spec.Disk}
		spec.Disk = qemu.Drive{}
	}
	if m.cfg.ArtifactDrive != "" {
		spec.Drives = append(spec.Drives, qemu.Drive{Path: m.cfg.ArtifactDrive, Format: "raw", ReadOnly: true})
	}
	accel := m.cfg.Accel
	if m.ramFile != "" {
		spec.MemoryFile, spec.MemoryShared = m.ramFile, true
	}
	if r := m.cfg.Resume; r != nil {
		spec.Seed = r.Seed // read-only, used in place
		spec.MemoryFile = r.RAM
		spec.Incoming = true
		if r.Accel != "" {
			accel = r.Accel // a saved guest resumes under the accelerator it was saved with
		}
	}
	for _, pf := range t.PortForwards {
		spec.Forwards = append(spec.Forwards, qemu.Forward{Proto: pf.Proto, HostPort: pf.HostPort, GuestPort: pf.GuestPort})
	}
	if err := m.prepareSandbox(ctx, &spec); err != nil {
		return "", err
	}
	spec.ExtraArgs = append(spec.ExtraArgs, m.cfg.ExtraQEMUArgs...)
	// QEMU lives as long as the machine, not as long as Start's ctx: the
	// machine's own context, cancelled by Close (and by Start's ctx while
	// Start runs, see start).
	opts := []qemu.Option{
		qemu.WithRunDir(m.rd),
		qemu.WithLogDir(m.artifacts),
		qemu.WithIntervals(m.ivals),
		qemu.WithLogger(m.logger),
	}
	if m.cfg.Detached {
		opts = append(opts, qemu.WithDetached())
	}
	inst, dec, err := qemu.Launch(m.life, spec, accel, opts...)
	m.accel = dec
	_ = writeJSON(filepath.Join(m.artifacts, ArtifactAccel), accelRecord{AccelDecision: dec, QEMUVersion: versionOf(inst)})
	if err != nil {
		return "", err
	}
	m.vm = inst
	m.bootStart = inst.Started()
	m.sshPort = inst.HostPort(22)
	argv := inst.Argv()
	_ = os.WriteFile(filepath.Join(m.artifacts, ArtifactQEMUArgv), []byte(exec.Join(argv)+"\n\n"+strings.Join(argv, "\n")+"\n"), 0o644)
	_ = writeJSON(filepath.Join(m.artifacts, ArtifactAccel), accelRecord{AccelDecision: dec, QEMUVersion: inst.Version(), PackageVersion: inst.PackageVersion()})

	// Follow the console and watch QEMU's exit for the boot phases.
	wctx, cancel := context.WithCancel(m.life)
	m.stopWatch = cancel
	m.watchDone = watchConsole(wctx, inst.SerialLog(), inst.Exited(), m.mon, m.logger)
	go func() {
		select {
		case <-inst.Exited():
		case <-wctx.Done():
			return
		}
		err := inst.Err()
		var stderr string
		if lines, _ := console.Tail(inst.QEMULog(), 15); len(lines) > 0 {
			stderr = strings.Join(lines, "\n")
		}
		m.mon.Exited(err, stderr)
	}()
	if m.cfg.onLaunch != nil {
		m.cfg.onLaunch(m)
	}
	return fmt.Sprintf("%s (%s), qemu %s, ssh on 127.0.0.1:%d", dec.Used, dec.Reason, inst.Version(), m.sshPort), nil
}

// accelRecord is accel.json.
type accelRecord struct {
	qemu.AccelDecision
	QEMUVersion    string `json:"qemuVersion,omitempty"`
	PackageVersion string `json:"qemuPackageVersion,omitempty"`
}

func versionOf(inst *qemu.Instance) string {
	if inst == nil {
		return ""
	}
	return inst.Version()
}

// Accelerator says which accelerator runs the guest and why.
func (m *Machine) Accelerator() qemu.AccelDecision { return m.accel }

// QEMUVersion is the QEMU version from the QMP greeting.
func (m *Machine) QEMUVersion() string {
	if m.vm == nil {
		return ""
	}
	return m.vm.Version()
}

// QEMU is the QEMU instance (nil before launch): QMP, SaveVM, events.
func (m *Machine) QEMU() *qemu.Instance { return m.vm }

// QEMUPid is the QEMU process id (0 before launch).
func (m *Machine) QEMUPid() int {
	if m.vm == nil {
		return 0
	}
	return m.vm.PID()
}

// RunDir is the machine's run dir (overlay, seed, keys, QMP socket).
func (m *Machine) RunDir() string { return m.runDir }

// Overlay is the path of the guest's qcow2 overlay (in the run dir).
func (m *Machine) Overlay() string {
	if m.rd == nil {
		return ""
	}
	return m.rd.File(overlayName)
}
