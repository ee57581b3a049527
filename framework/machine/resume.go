package machine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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

// Resume starts a machine from a ready guest saved with Snapshot instead
// of booting and provisioning it.
type Resume struct {
	// Disk is a qcow2 holding the snapshot; it is copied for the run (the
	// snapshot must be in the top image) and never written.
	Disk string
	// Snapshot names the internal snapshot.
	Snapshot string
	// Seed is the NoCloud seed the guest booted with (the device set must
	// match the snapshot's).
	Seed string
	// ClientKey is the OpenSSH private key the guest authorizes.
	ClientKey []byte
	// HostKey is the guest's host key (OpenSSH private key) to pin.
	HostKey []byte
	// Accel the snapshot was taken under; the resumed guest runs under it.
	Accel string
}

// SnapshotFiles are the files Snapshot writes into its directory.
type SnapshotFiles struct {
	Disk, Seed, ClientKey, HostKey string
}

// prepareResume gives the run a copy of the snapshot disk, the seed and
// the keys of the saved guest.
func (m *Machine) prepareResume(ctx context.Context) (string, error) {
	r := m.cfg.Resume
	if r.Disk == "" || r.Snapshot == "" || r.Seed == "" {
		return "", errors.New("machine: Resume needs Disk, Snapshot and Seed")
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
	if err := copyFile(ctx, r.Disk, m.rd.File(overlayName)); err != nil {
		return "", fmt.Errorf("copying the provisioned disk: %w", err)
	}
	if err := copyFile(ctx, r.Seed, m.rd.File(seedName)); err != nil {
		return "", fmt.Errorf("copying the seed: %w", err)
	}
	if err := m.checkSavedDisk(ctx, m.rd.File(overlayName)); err != nil {
		return "", err
	}
	return fmt.Sprintf("resuming snapshot %s of %s (copied in %s)", r.Snapshot, r.Disk, time.Since(start).Round(time.Millisecond)), nil
}

// checkSavedDisk inspects the copy of a saved disk before QEMU opens it:
// a qcow2 whose only reference is its backing file, the base image this
// machine was given (itself inspected like any disk), holding the
// snapshot to load.
func (m *Machine) checkSavedDisk(ctx context.Context, disk string) error {
	base, err := qemu.Inspect(ctx, m.cfg.Image.Disk, m.cfg.Image.Format)
	if err != nil {
		return err
	}
	info, err := qemu.Info(ctx, disk, qemu.FormatQcow2)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSavedGuestMismatch, err)
	}
	wantBase, _ := filepath.Abs(m.cfg.Image.Disk)
	switch {
	case info.Format != qemu.FormatQcow2:
		return fmt.Errorf("%w: %s: format is %q, want qcow2", ErrSavedGuestMismatch, m.cfg.Resume.Disk, info.Format)
	case info.DataFile() != "":
		return fmt.Errorf("%w: %w: %s: format-specific.data.data-file is %q", ErrSavedGuestMismatch, qemu.ErrUnsafeImage, m.cfg.Resume.Disk, info.DataFile())
	case info.BackingFile != wantBase:
		return fmt.Errorf("%w: %s: backing-filename is %q, want the base image %s", ErrSavedGuestMismatch, m.cfg.Resume.Disk, info.BackingFile, wantBase)
	case !info.HasSnapshot(m.cfg.Resume.Snapshot):
		return fmt.Errorf("%w: %s holds no snapshot %q", ErrSavedGuestMismatch, m.cfg.Resume.Disk, m.cfg.Resume.Snapshot)
	case info.VirtualSize < base.VirtualSize:
		return fmt.Errorf("%w: %s is smaller than its base image", ErrSavedGuestMismatch, m.cfg.Resume.Disk)
	}
	return nil
}

// waitResumedSSH is waitSSH for a resumed guest: a host key other than the
// saved one means the saved guest is not what was saved.
func (m *Machine) waitResumedSSH(ctx context.Context) (string, error) {
	d, err := m.waitSSH(ctx)
	if errors.Is(err, sshx.ErrHostKeyMismatch) {
		return "", fmt.Errorf("%w: %w", ErrSavedGuestMismatch, err)
	}
	return d, err
}

// syncClock sets the resumed guest's clock: it wakes up at the time its
// snapshot was taken.
func (m *Machine) syncClock(ctx context.Context) (string, error) {
	now := time.Now().UTC()
	_, err := m.ssh.Run(ctx, exec.Cmd{Args: []string{"date", "-u", "-s", "@" + fmt.Sprint(now.Unix())}, Sudo: true})
	if err != nil {
		return "", fmt.Errorf("setting the guest clock: %w", err)
	}
	return "clock set to " + now.Format(time.RFC3339), nil
}

// Snapshot saves the ready guest into dir (a qcow2 with an internal
// snapshot of RAM and devices, the seed and the SSH keys), then stops it:
// a later Start with Resume continues from exactly this point. The
// machine's artifacts are collected first; the machine is closed after.
func (m *Machine) Snapshot(ctx context.Context, name, dir string) (SnapshotFiles, error) {
	files := SnapshotFiles{
		Disk: filepath.Join(dir, "disk.qcow2"), Seed: filepath.Join(dir, "seed.iso"),
		ClientKey: filepath.Join(dir, "id_ed25519"), HostKey: filepath.Join(dir, "ssh_host_ed25519"),
	}
	if m.vm == nil || m.clientKey == nil || m.hostKey == nil {
		return files, errors.New("machine.Snapshot: the machine is not running")
	}
	m.collect(ctx)
	if m.ssh != nil {
		m.ssh.Close()
	}
	// Pause the guest so nothing is written after the snapshot, save it,
	// and quit without a guest shutdown (quit flushes the overlay).
	if _, err := m.vm.Execute(ctx, "stop", nil); err != nil {
		return files, fmt.Errorf("pausing the guest: %w", err)
	}
	if err := m.vm.SaveVM(ctx, name); err != nil {
		return files, fmt.Errorf("saving snapshot %s: %w", name, err)
	}
	if _, err := m.vm.Execute(ctx, "quit", nil); err != nil {
		m.logger.Warn("quit after savevm", "err", err)
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
