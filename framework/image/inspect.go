package image

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// ErrUnsafeImage is wrapped when a downloaded image refers to other files
// (a qcow2 backing file or external data file): booting it would read
// files of the host into the guest. Never a reason to try the next entry.
var ErrUnsafeImage = errors.New("unsafe disk image")

// ErrUnsupportedFormat is wrapped when an image is neither qcow2 nor raw.
var ErrUnsupportedFormat = errors.New("unsupported disk image format")

// DiskInfo is what Inspect learns about a disk image.
type DiskInfo struct {
	Format      string // qcow2, raw, vmdk, …
	VirtualSize int64
	BackingFile string // qcow2 backing file, "" when none
	DataFile    string // qcow2 external data file, "" when none
	// By says how the format was found: "qemu-img" or "header".
	By string
}

// Check accepts qcow2 or raw images that stand alone.
func (d *DiskInfo) Check() error {
	if d.BackingFile != "" {
		return fmt.Errorf("%w: qcow2 with backing file %q", ErrUnsafeImage, d.BackingFile)
	}
	if d.DataFile != "" {
		return fmt.Errorf("%w: qcow2 with external data file %q", ErrUnsafeImage, d.DataFile)
	}
	if d.Format != FormatQcow2 && d.Format != FormatRaw {
		return fmt.Errorf("%w: %s (want qcow2 or raw)", ErrUnsupportedFormat, d.Format)
	}
	return nil
}

// Inspect finds the format of a disk image with `qemu-img info
// --output=json` (upstream "*.img" cloud images are qcow2), or, when
// qemu-img is not installed, from the file's header.
func Inspect(ctx context.Context, path string) (*DiskInfo, error) {
	qemuImg, err := exec.LookPath("qemu-img")
	if err != nil {
		return Sniff(path)
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, qemuImg, "info", "--output=json", path)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("qemu-img info %s: %w: %s", path, err, strings.TrimSpace(stderr.String()))
	}
	return parseQemuImgInfo(out)
}

func parseQemuImgInfo(out []byte) (*DiskInfo, error) {
	var info struct {
		Format         string `json:"format"`
		VirtualSize    int64  `json:"virtual-size"`
		BackingFile    string `json:"backing-filename"`
		FormatSpecific struct {
			Data struct {
				DataFile string `json:"data-file"`
			} `json:"data"`
		} `json:"format-specific"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return nil, fmt.Errorf("parsing qemu-img info: %w", err)
	}
	if info.Format == "" {
		return nil, errors.New("qemu-img info named no format")
	}
	return &DiskInfo{Format: info.Format, VirtualSize: info.VirtualSize, BackingFile: info.BackingFile,
		DataFile: info.FormatSpecific.Data.DataFile, By: "qemu-img"}, nil
}

// Sniff finds the format of a disk image from its header: qcow2 (with its
// backing and data file references), the other formats QEMU knows by magic,
// else raw.
func Sniff(path string) (*DiskInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	hdr := make([]byte, 512)
	n, err := io.ReadFull(f, hdr)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	hdr = hdr[:n]
	d := &DiskInfo{Format: FormatRaw, VirtualSize: fi.Size(), By: "header"}
	magics := []struct{ magic, format string }{
		{"QFI\xfb", FormatQcow2}, {"QFI\x00", "qed"}, {"KDMV", "vmdk"}, {"vhdxfile", "vhdx"},
		{"conectix", "vpc"}, {"<<< ", "vdi"},
	}
	for _, m := range magics {
		if bytes.HasPrefix(hdr, []byte(m.magic)) {
			d.Format = m.format
			break
		}
	}
	if d.Format != FormatQcow2 {
		return d, nil
	}
	if len(hdr) < 104 {
		return nil, fmt.Errorf("%s: truncated qcow2 header", path)
	}
	be := binary.BigEndian
	version := be.Uint32(hdr[4:8])
	backingOff, backingLen := be.Uint64(hdr[8:16]), be.Uint32(hdr[16:20])
	d.VirtualSize = int64(be.Uint64(hdr[24:32]))
	if backingOff != 0 && backingLen > 0 {
		name := make([]byte, min(backingLen, 1023))
		if _, err := f.ReadAt(name, int64(backingOff)); err != nil {
			return nil, fmt.Errorf("%s: reading the backing file name: %w", path, err)
		}
		d.BackingFile = string(name)
	}
	// qcow2 v3 incompatible feature bit 2: an external data file.
	if version >= 3 && be.Uint64(hdr[72:80])&(1<<2) != 0 {
		d.DataFile = "(external data file)"
	}
	return d, nil
}
