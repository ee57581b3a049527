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
	"github.com/guestcatalog/guestcatalog/framework/sshx"
)

// PhaseResume is the phase of a guest resumed from a snapshot: QEMU loads
// the ready guest's RAM and devices instead of booting.
const PhaseResume = "resume"

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
		return "", fmt.Errorf("resume host key: %w", err)
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
	return fmt.Sprintf("resuming snapshot %s of %s (copied in %s)", r.Snapshot, r.Disk, time.Since(start).Round(time.Millisecond)), nil
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
