package machine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/guestcatalog/guestcatalog/framework/exec"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
	"github.com/guestcatalog/guestcatalog/framework/sshx"
)

// PhaseResume is the phase of a guest resumed from a snapshot: QEMU loads
// the ready guest's RAM and devices instead of booting.
const PhaseResume = "resume"

// ErrSavedGuestMismatch is wrapped when a saved guest is not what was
// saved: its host key is not the pinned one, its disk does not sit on the
// expected base image or holds no such snapshot. The saved guest must be
// discarded (and the reason reported), never trusted.
var ErrSavedGuestMismatch = errors.New("saved guest failed its identity check")

// ResumeFailure says why a resume failed, for the report and the user: an
// identity check ("identity check failed: …"), or any other reason
// ("resume failed: …"). ok is false when err is nil.
func ResumeFailure(err error) (reason string, identity, ok bool) {
	if err == nil {
		return "", false, false
	}
	msg := err.Error()
	var pe *PhaseError
	if errors.As(err, &pe) {
		msg = fmt.Sprintf("phase %s: %v", pe.Phase, pe.Err)
	}
	msg = firstLine(msg)
	if errors.Is(err, ErrSavedGuestMismatch) {
		return "identity check failed: " + msg, true, true
	}
	return "resume failed: " + msg, false, true
}

// PhaseLoad is the phase of a resumed guest in which QEMU loads the saved
// device state and the guest runs on.
const PhaseLoad = "load"

// Resume starts a machine from a ready guest saved with Save instead of
// booting and provisioning it. No file of it is written: the run gets a
// thin overlay backed by Disk, RAM mapped copy-on-write from RAM, and the
// seed read-only.
type Resume struct {
	// Disk is the saved qcow2 (its backing file the base image): the
	// backing file of the run's overlay.
	Disk string
	// State is the device state (qemu.SaveState); RAM the saved guest RAM.
	State, RAM string
	// Seed is the NoCloud seed the guest booted with (the device set must
	// match the saved one).
	Seed string
	// ClientKey is the OpenSSH private key the guest authorizes.
	ClientKey []byte
	// HostKey is the guest's host key (OpenSSH private key) to pin.
	HostKey []byte
	// Accel the guest was saved under; the resumed guest runs under it.
	Accel string
	// ClockAtLogin says the saved guest sets its own clock at the first
	// SSH login after a resume (Save installed ClockHookPath, see
	// ClockAtLogin): the resume then sends no time of its own, which
	// saves a sudo round trip (seconds under TCG).
	ClockAtLogin bool
	// AfterLoad, if set, runs once the saved state is loaded, before the
	// guest runs on (it is paused): QMP changes to the machine, for
	// example a device_add.
	AfterLoad func(ctx context.Context, vm *qemu.Instance) error
}

// SavedFiles are the files Save writes into its directory.
type SavedFiles struct {
	Disk, State, RAM, Seed, ClientKey, HostKey string
}

// File names Save uses.
const (
	SavedDisk      = "disk.qcow2"
	SavedState     = "state.bin"
	SavedRAM       = "ram.bin"
	SavedSeed      = "seed.iso"
	SavedClientKey = "id_ed25519"
	SavedHostKey   = "ssh_host_ed25519"
)

// SavedIn names the files of a saved guest in dir.
func SavedIn(dir string) SavedFiles {
	return SavedFiles{
		Disk: filepath.Join(dir, SavedDisk), State: filepath.Join(dir, SavedState), RAM: filepath.Join(dir, SavedRAM),
		Seed: filepath.Join(dir, SavedSeed), ClientKey: filepath.Join(dir, SavedClientKey), HostKey: filepath.Join(dir, SavedHostKey),
	}
}

// prepareResume gives the run a thin overlay over the saved disk and the
// keys of the saved guest. Nothing is copied: the overlay is created
// while the saved disk and the base image are inspected.
func (m *Machine) prepareResume(ctx context.Context) (string, error) {
	r := m.cfg.Resume
	if r.Disk == "" || r.State == "" || r.RAM == "" || r.Seed == "" {
		return "", errors.New("machine: Resume needs Disk, State, RAM and Seed")
	}
	signer, err := ssh.ParsePrivateKey(r.ClientKey)
	if err != nil {
		return "", fmt.Errorf("resume client key: %w", err)
	}
	hostSigner, err := ssh.ParsePrivateKey(r.HostKey)
	if err != nil {
		return "", fmt.Errorf("%w: resume host key: %w", ErrSavedGuestMismatch, err)
	}
	keyDir := m.rd.File("ssh")
	if err := os.MkdirAll(keyDir, 0o700); err != nil {
		return "", err
	}
	keyPath := filepath.Join(keyDir, "id_ed25519")
	if err := os.WriteFile(keyPath, r.ClientKey, 0o600); err != nil {
		return "", err
	}
	m.clientKey = &sshx.KeyPair{Signer: signer, PrivateKeyPEM: r.ClientKey, PrivateKeyPath: keyPath}
	m.hostKey = &sshx.HostKey{PrivatePEM: string(r.HostKey), PublicKey: hostSigner.PublicKey()}
	start := time.Now()
	// Inspect (two qemu-img runs) while the overlay is made (a third):
	// the overlay is not used before both checks passed.
	checked := make(chan error, 1)
	go func() { checked <- m.checkSavedDisk(ctx, r.Disk) }()
	overlay := m.rd.File(overlayName)
	cerr := qemu.CreateOverlay(ctx, r.Disk, qemu.FormatQcow2, overlay, 0)
	if err := <-checked; err != nil {
		return "", err
	}
	if cerr != nil {
		return "", fmt.Errorf("creating the overlay over the saved disk: %w", cerr)
	}
	return fmt.Sprintf("overlay over %s (%s)", r.Disk, time.Since(start).Round(time.Millisecond)), nil
}

// checkSavedDisk inspects a saved disk before QEMU opens it: a qcow2
// whose only reference is its backing file, the base image this machine
// was given (itself inspected like any disk), and not smaller than it.
func (m *Machine) checkSavedDisk(ctx context.Context, disk string) error {
	type res struct {
		info qemu.ImageInfo
		err  error
	}
	baseCh := make(chan res, 1)
	go func() {
		info, err := qemu.Inspect(ctx, m.cfg.Image.Disk, m.cfg.Image.Format)
		baseCh <- res{info, err}
	}()
	info, err := qemu.Info(ctx, disk, qemu.FormatQcow2)
	b := <-baseCh
	if b.err != nil {
		return b.err
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSavedGuestMismatch, err)
	}
	wantBase, _ := filepath.Abs(m.cfg.Image.Disk)
	switch {
	case info.Format != qemu.FormatQcow2:
		return fmt.Errorf("%w: %s: format is %q, want qcow2", ErrSavedGuestMismatch, disk, info.Format)
	case info.DataFile() != "":
		return fmt.Errorf("%w: %w: %s: format-specific.data.data-file is %q", ErrSavedGuestMismatch, qemu.ErrUnsafeImage, disk, info.DataFile())
	case info.BackingFile != wantBase:
		return fmt.Errorf("%w: %s: backing-filename is %q, want the base image %s", ErrSavedGuestMismatch, disk, info.BackingFile, wantBase)
	case info.VirtualSize < b.info.VirtualSize:
		return fmt.Errorf("%w: %s is smaller than its base image", ErrSavedGuestMismatch, disk)
	}
	return nil
}

// loadState loads the saved device state into the waiting QEMU, runs the
// AfterLoad hook and lets the guest run on.
func (m *Machine) loadState(ctx context.Context) (string, error) {
	r := m.cfg.Resume
	st, err := m.vm.LoadState(ctx, r.State)
	if err != nil {
		return "", err
	}
	if r.AfterLoad != nil {
		if err := r.AfterLoad(ctx, m.vm); err != nil {
			return "", fmt.Errorf("after loading the saved state: %w", err)
		}
	}
	if err := m.vm.Continue(ctx); err != nil {
		return "", fmt.Errorf("running the resumed guest: %w", err)
	}
	return fmt.Sprintf("state of %s loaded in %d ms", r.State, st.TotalTime), nil
}

// waitResumedSSH is waitSSH for a resumed guest: a host key other than the
// saved one means the saved guest is not what was saved.
func (m *Machine) waitResumedSSH(ctx context.Context) (string, error) {
	// The guest runs already: poll often (a refused dial costs nothing).
	d, err := m.dialSSH(ctx, 20*time.Millisecond)
	if errors.Is(err, sshx.ErrHostKeyMismatch) {
		return "", fmt.Errorf("%w: %w", ErrSavedGuestMismatch, err)
	}
	return d, err
}

// syncClock sets the resumed guest's clock: it wakes up at the time it
// was saved. A guest saved with the clock hook (Resume.ClockAtLogin) sets
// it itself when the first SSH session opens, before any command runs;
// nothing is sent then. Otherwise the host's time is sent with sudo, only
// once the guest's root shell runs (it says "r"), so the second or more
// sudo takes to start under TCG does not make the clock lag by as much.
func (m *Machine) syncClock(ctx context.Context) (string, error) {
	if m.cfg.Resume != nil && m.cfg.Resume.ClockAtLogin {
		return "clock set by the guest from its RTC when the first session opens (" + ClockHookPath + ")", nil
	}
	pr, pw := io.Pipe()
	defer pw.Close()
	var sent time.Time
	ready := writerFunc(func(p []byte) (int, error) {
		if sent.IsZero() && bytes.IndexByte(p, 'r') >= 0 {
			sent = time.Now().UTC()
			go func() {
				fmt.Fprintf(pw, "%d.%09d\n", sent.Unix(), sent.Nanosecond())
				pw.Close()
			}()
		}
		return len(p), nil
	})
	_, err := m.ssh.Run(ctx, exec.Cmd{Script: `echo r; read t; date -u -s "@$t" >/dev/null`, Sudo: true, Stdin: pr, Stdout: ready})
	if err != nil {
		return "", fmt.Errorf("setting the guest clock: %w", err)
	}
	return "clock set to " + sent.Format(time.RFC3339Nano), nil
}

// ClockHookPath is the guest program Save installs so that a resumed
// guest takes the host's time by itself: sshd runs it as root through
// pam_exec when a connection's session opens (before the user's command),
// and it steps the clock to the RTC, which QEMU keeps at the host's time,
// when the two are more than 2 s apart: a guest that runs on is never
// stepped, and the RTC's whole seconds are the precision. Each step is
// logged (its "before after" epoch seconds) to ClockStepLog.
const ClockHookPath = "/usr/local/libexec/guestcatalog-resume-clock"

// ClockStepLog is where the clock hook appends "<before> <after>" epoch
// seconds for every step it made (tmpfs: gone at reboot).
const ClockStepLog = "/run/guestcatalog-resume-clock"

// clockHook is ClockHookPath's text: POSIX sh (dash on Debian, the shell
// that then runs the user's command, so a resumed guest translates its
// code once) and date, which the step needs anyway.
const clockHook = `#!/bin/sh
# Installed by guestcatalog in a saved guest: run by pam_exec (sshd) as
# root when a session opens. A resumed guest wakes at the time it was
# saved; QEMU keeps the RTC at the host's time: step to it when the two
# are more than 2 s apart.
read -r rtc < /sys/class/rtc/rtc0/since_epoch || exit 0
now=$(date +%s) || exit 0
if [ $((rtc - now)) -gt 2 ] || [ $((now - rtc)) -gt 2 ]; then
  date -u -s "@$rtc" >/dev/null && echo "$now $rtc" >> ` + ClockStepLog + `
fi
exit 0
`

// installClockHookScript installs clockHook (on stdin) and its pam_exec
// line in sshd's PAM stack, only where it can work: a readable RTC,
// pam_exec and an sshd that uses PAM. It fails (and changes nothing)
// otherwise.
const installClockHookScript = `set -eu
[ -r /sys/class/rtc/rtc0/since_epoch ]
[ -f /etc/pam.d/sshd ]
ls /lib/*/security/pam_exec.so /usr/lib/*/security/pam_exec.so /lib/security/pam_exec.so /usr/lib/security/pam_exec.so 2>/dev/null | grep -q .
PATH="$PATH:/usr/sbin:/sbin" sshd -T 2>/dev/null | grep -qix 'usepam yes'
install -D -m 0755 /dev/stdin ` + ClockHookPath + `
grep -q 'guestcatalog-resume-clock' /etc/pam.d/sshd ||
  printf '%s\n' '# guestcatalog: a resumed guest takes the RTC time at login' 'session optional pam_exec.so quiet ` + ClockHookPath + `' >> /etc/pam.d/sshd
`

// installClockHook installs the clock hook in the ready guest before it
// is saved; false (with the reason logged) leaves resumes on the sudo path.
func (m *Machine) installClockHook(ctx context.Context) bool {
	_, err := m.ssh.Run(ctx, exec.Cmd{Script: installClockHookScript, Sudo: true, Stdin: strings.NewReader(clockHook)})
	if err != nil {
		m.logger.Warn("the guest cannot set its clock at login (RTC, pam_exec or sshd's UsePAM missing); its resumes set the clock with sudo", "err", err)
		return false
	}
	return true
}

// ClockAtLogin says whether Save installed the clock hook in the saved
// guest: resumes of it may set Resume.ClockAtLogin.
func (m *Machine) ClockAtLogin() bool { return m.clockAtLogin }

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// Save keeps the ready guest in dir, then stops it: its disk (the
// overlay, moved), its RAM (the machine's memory file, copied sparse),
// its device state (a migration stream without the RAM), the seed and
// the SSH keys. A later Start with Resume continues from exactly this
// point. The machine must be Saveable. Its artifacts are collected first;
// the machine is closed after.
func (m *Machine) Save(ctx context.Context, dir string) (SavedFiles, error) {
	files := SavedIn(dir)
	if m.vm == nil || m.clientKey == nil || m.hostKey == nil {
		return files, errors.New("machine.Save: the machine is not running")
	}
	if m.ramFile == "" {
		return files, errors.New("machine.Save: the machine is not Saveable (its RAM is not in a memory file)")
	}
	if m.ssh != nil {
		m.clockAtLogin = m.installClockHook(ctx)
	}
	m.collect(ctx)
	if m.ssh != nil {
		m.ssh.Close()
		// Let the guest end the closed session before it is frozen, or
		// every resume would end it again first (waitQuiet).
		took, quiet := waitQuiet(ctx, m.vm.PID(), 15*time.Second)
		m.logger.Debug("guest quiet before save", "after", took, "quiet", quiet)
	}
	// Pause the guest so that RAM, disk and devices agree, save the device
	// state, and quit without a guest shutdown (quit flushes the overlay).
	if _, err := m.vm.Execute(ctx, "stop", nil); err != nil {
		return files, fmt.Errorf("pausing the guest: %w", err)
	}
	if _, err := m.vm.SaveState(ctx, files.State); err != nil {
		return files, fmt.Errorf("saving the guest's state: %w", err)
	}
	if _, err := m.vm.Execute(ctx, "quit", nil); err != nil {
		m.logger.Warn("quit after saving", "err", err)
	}
	select {
	case <-m.vm.Exited():
	case <-time.After(30 * time.Second):
		m.vm.Kill()
		<-m.vm.Exited()
	case <-ctx.Done():
		return files, ctx.Err()
	}
	if err := os.Rename(m.rd.File(overlayName), files.Disk); err != nil {
		if err := copyFile(ctx, m.rd.File(overlayName), files.Disk); err != nil {
			return files, fmt.Errorf("keeping the disk: %w", err)
		}
	}
	if err := copySparse(ctx, m.ramFile, files.RAM); err != nil {
		return files, fmt.Errorf("keeping the RAM: %w", err)
	}
	if err := copyFile(ctx, m.rd.File(seedName), files.Seed); err != nil {
		return files, fmt.Errorf("keeping the seed: %w", err)
	}
	if err := os.WriteFile(files.ClientKey, m.clientKey.PrivateKeyPEM, 0o600); err != nil {
		return files, err
	}
	if err := os.WriteFile(files.HostKey, []byte(m.hostKey.PrivatePEM), 0o600); err != nil {
		return files, err
	}
	return files, m.Close(ctx)
}

// copySparse copies src to dst leaving holes where src has zero pages:
// most of a guest's RAM is zero, and a hole costs neither disk nor a
// read when the resumed guest faults it in.
func copySparse(ctx context.Context, src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	err = func() error {
		buf := make([]byte, 1<<20)
		var off int64
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			n, rerr := io.ReadFull(in, buf)
			for p := 0; p < n; p += 4096 {
				page := buf[p:min(p+4096, n)]
				if !allZero(page) {
					if _, err := out.WriteAt(page, off+int64(p)); err != nil {
						return err
					}
				}
			}
			off += int64(n)
			if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
				break
			}
			if rerr != nil {
				return rerr
			}
		}
		return out.Truncate(st.Size())
	}()
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
	}
	return err
}

func allZero(b []byte) bool {
	var zero [4096]byte
	return bytes.Equal(b, zero[:len(b)])
}

func copyFile(ctx context.Context, src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, readerCtx{ctx, in})
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
	}
	return err
}

type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
