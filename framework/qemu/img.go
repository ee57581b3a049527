package qemu

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// QemuImg is the qemu-img binary used by this package.
const QemuImg = "qemu-img"

// ImageInfo is what `qemu-img info` says about an image.
type ImageInfo struct {
	Format      string `json:"format"`
	VirtualSize int64  `json:"virtual-size"`
	ActualSize  int64  `json:"actual-size"`
	BackingFile string `json:"backing-filename,omitempty"`
	// Snapshots are internal snapshots (savevm) stored in a qcow2 image.
	Snapshots []struct {
		Name string `json:"name"`
	} `json:"snapshots,omitempty"`
}

// HasSnapshot says whether the image holds an internal snapshot name.
func (i ImageInfo) HasSnapshot(name string) bool {
	for _, s := range i.Snapshots {
		if s.Name == name {
			return true
		}
	}
	return false
}

// Info runs `qemu-img info --output=json`. The format is probed unless
// given; -U lets it read an image a running QEMU holds.
func Info(ctx context.Context, path, format string) (ImageInfo, error) {
	args := []string{"info", "-U", "--output=json"}
	if format != "" {
		args = append(args, "-f", format)
	}
	out, err := runImg(ctx, append(args, path)...)
	if err != nil {
		return ImageInfo{}, err
	}
	var info ImageInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return ImageInfo{}, fmt.Errorf("parsing qemu-img info of %s: %w", path, err)
	}
	return info, nil
}

// CreateOverlay creates a qcow2 overlay backed by base (which is never
// written): `qemu-img create -f qcow2 -b BASE -F FMT OVERLAY [SIZE]`.
// sizeBytes 0 keeps the base's virtual size; a larger size grows the disk
// (cloud-init's growpart then resizes the root partition); a smaller one
// is an error. The base path is made absolute, since qemu-img resolves a
// relative backing path against the overlay's directory.
func CreateOverlay(ctx context.Context, base, baseFormat, overlay string, sizeBytes int64) error {
	abs, err := filepath.Abs(base)
	if err != nil {
		return fmt.Errorf("creating overlay: %w", err)
	}
	if baseFormat == "" {
		return fmt.Errorf("creating overlay of %s: base format must be set (qcow2 or raw)", base)
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("creating overlay: base image: %w", err)
	}
	if sizeBytes < 0 {
		return fmt.Errorf("creating overlay of %s: negative size %d", base, sizeBytes)
	}
	if sizeBytes > 0 {
		info, err := Info(ctx, abs, baseFormat)
		if err != nil {
			return fmt.Errorf("creating overlay: %w", err)
		}
		if sizeBytes < info.VirtualSize {
			return fmt.Errorf("creating overlay of %s: size %d is smaller than the image's %d bytes", base, sizeBytes, info.VirtualSize)
		}
		if sizeBytes == info.VirtualSize {
			sizeBytes = 0
		}
	}
	args := []string{"create", "-q", "-f", "qcow2", "-b", abs, "-F", baseFormat, overlay}
	if sizeBytes > 0 {
		args = append(args, strconv.FormatInt(sizeBytes, 10))
	}
	if _, err := runImg(ctx, args...); err != nil {
		return fmt.Errorf("creating overlay: %w", err)
	}
	return nil
}

// CreateUEFIVars makes a per-machine UEFI variable store at dst from the
// arch's template (or template, if set). A dst ending in .qcow2 is
// written as qcow2, which savevm needs (a writable raw pflash blocks it);
// anything else is a raw copy.
func CreateUEFIVars(ctx context.Context, arch, template, dst string) error {
	if template == "" {
		_, template = DefaultFirmware(arch)
	}
	if template == "" {
		return fmt.Errorf("creating uefi vars: no template for arch %q", arch)
	}
	if strings.HasSuffix(dst, ".qcow2") {
		if _, err := runImg(ctx, "convert", "-q", "-f", "raw", "-O", "qcow2", template, dst); err != nil {
			return fmt.Errorf("creating uefi vars: %w", err)
		}
		return nil
	}
	b, err := os.ReadFile(template)
	if err != nil {
		return fmt.Errorf("creating uefi vars: %w", err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		return fmt.Errorf("creating uefi vars: %w", err)
	}
	return nil
}

func runImg(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, QemuImg, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("%s %s: %s", QemuImg, strings.Join(args, " "), msg)
	}
	return stdout.Bytes(), nil
}
