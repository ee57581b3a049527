package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/guestcatalog/guestcatalog/framework/exec"
)

// QemuImg is the qemu-img binary used by this package.
const QemuImg = "qemu-img"

// Bounds of one `qemu-img info`: an image is untrusted input (a hostile
// one may name a data file that never answers, or carry thousands of
// snapshots).
const (
	infoTimeout   = 30 * time.Second
	infoMaxOutput = 1 << 20
)

// Disk formats QEMU is given.
const (
	FormatQcow2 = "qcow2"
	FormatRaw   = "raw"
)

var (
	// ErrUnsafeImage is wrapped when a disk image refers to other files (a
	// backing file, an external data file): booting it would read files
	// of the host into the guest.
	ErrUnsafeImage = errors.New("unsafe disk image")
	// ErrFormatMismatch is wrapped when an image is not in the format it
	// was declared (or expected) to be in.
	ErrFormatMismatch = errors.New("disk image format mismatch")
	// ErrUnsupportedFormat is wrapped when an image is neither qcow2 nor raw.
	ErrUnsupportedFormat = errors.New("unsupported disk image format")
)

// ImageInfo is what `qemu-img info` says about an image.
type ImageInfo struct {
	Format      string `json:"format"`
	VirtualSize int64  `json:"virtual-size"`
	ActualSize  int64  `json:"actual-size"`
	BackingFile string `json:"backing-filename,omitempty"`
	// FormatSpecific holds the qcow2 external data file (data-file).
	FormatSpecific struct {
		Type string `json:"type"`
		Data struct {
			DataFile string `json:"data-file,omitempty"`
		} `json:"data"`
	} `json:"format-specific"`
	// Snapshots are internal snapshots (savevm) stored in a qcow2 image.
	Snapshots []struct {
		Name string `json:"name"`
	} `json:"snapshots,omitempty"`
}

// DataFile is the qcow2 external data file, "" when none.
func (i ImageInfo) DataFile() string { return i.FormatSpecific.Data.DataFile }

// HasSnapshot says whether the image holds an internal snapshot name.
func (i ImageInfo) HasSnapshot(name string) bool {
	for _, s := range i.Snapshots {
		if s.Name == name {
			return true
		}
	}
	return false
}

// Info runs `qemu-img info --output=json` (bounded in time and output
// size). The format is probed unless given; -U lets it read an image a
// running QEMU holds. Info does not judge the image: Inspect does.
func Info(ctx context.Context, path, format string) (ImageInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, infoTimeout)
	defer cancel()
	args := []string{"info", "-U", "--output=json"}
	if format != "" {
		args = append(args, "-f", format)
	}
	out, err := runImgLimited(ctx, infoMaxOutput, append(args, "--", path)...)
	if err != nil {
		return ImageInfo{}, err
	}
	var info ImageInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return ImageInfo{}, fmt.Errorf("parsing qemu-img info of %s: %w", path, err)
	}
	if info.Format == "" {
		return ImageInfo{}, fmt.Errorf("qemu-img info of %s named no format", path)
	}
	return info, nil
}

// Inspect is how every disk image is looked at before QEMU opens it: the
// format is probed (never taken from the caller) and the image refused
// when it names a backing file or an external data file, or when its
// format is not want ("" accepts qcow2 or raw).
func Inspect(ctx context.Context, path, want string) (ImageInfo, error) {
	info, err := Info(ctx, path, "")
	if err != nil {
		return info, fmt.Errorf("inspecting %s: %w", path, err)
	}
	return info, info.Check(path, want)
}

// Check refuses an image that is not a standalone qcow2 or raw file in
// the format want ("": either). The error names the file and the field.
func (i ImageInfo) Check(path, want string) error {
	if i.BackingFile != "" {
		return fmt.Errorf("%w: %s: backing-filename is %q (a disk image must stand alone: its backing file would be opened on the host)", ErrUnsafeImage, path, i.BackingFile)
	}
	if df := i.DataFile(); df != "" {
		return fmt.Errorf("%w: %s: format-specific.data.data-file is %q (an external data file would be opened on the host)", ErrUnsafeImage, path, df)
	}
	switch {
	case i.Format != FormatQcow2 && i.Format != FormatRaw:
		return fmt.Errorf("%w: %s: format is %q (want qcow2 or raw)", ErrUnsupportedFormat, path, i.Format)
	case want != "" && i.Format != want:
		return fmt.Errorf("%w: %s: format is %q, declared %q", ErrFormatMismatch, path, i.Format, want)
	}
	return nil
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

// RebaseUnsafe points the qcow2 overlay at another backing file without
// reading either image (`qemu-img rebase -u`): only for a backing file
// known to hold the same bytes as the old one (a moved cache). The base
// path is made absolute, as in CreateOverlay.
func RebaseUnsafe(ctx context.Context, overlay, base, baseFormat string) error {
	abs, err := filepath.Abs(base)
	if err != nil {
		return fmt.Errorf("rebasing %s: %w", overlay, err)
	}
	if baseFormat == "" {
		return fmt.Errorf("rebasing %s: base format must be set (qcow2 or raw)", overlay)
	}
	if _, err := runImg(ctx, "rebase", "-u", "-f", FormatQcow2, "-b", abs, "-F", baseFormat, overlay); err != nil {
		return fmt.Errorf("rebasing %s: %w", overlay, err)
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
	return runImgLimited(ctx, 0, args...)
}

// runImgLimited runs qemu-img through the host runner; maxOutput > 0
// bounds its output.
func runImgLimited(ctx context.Context, maxOutput int, args ...string) ([]byte, error) {
	res, err := (&exec.Host{}).Run(ctx, exec.Cmd{Args: append([]string{QemuImg}, args...), MaxOutput: maxOutput})
	if err != nil {
		msg := strings.TrimSpace(string(res.Stderr))
		if msg == "" || errors.Is(err, exec.ErrOutputLimit) || ctx.Err() != nil {
			var re *exec.RunError
			if errors.As(err, &re) && re.Err != nil {
				return nil, fmt.Errorf("%s %s: %w", QemuImg, strings.Join(args, " "), re.Err)
			}
			return nil, err
		}
		return nil, fmt.Errorf("%s %s: %s", QemuImg, strings.Join(args, " "), msg)
	}
	return res.Stdout, nil
}
