package cloudinit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"

	"github.com/guestcatalog/guestcatalog/framework/fsutil"
)

// VolumeLabel is the label NoCloud looks for on the seed filesystem.
const VolumeLabel = "cidata"

// files lists the seed's files in a fixed order; user-data holds the host
// private key, so it is readable by its owner only.
func (s *Seed) files() []seedFile {
	return []seedFile{
		{FileUserData, s.UserData, 0o600},
		{FileMetaData, s.MetaData, 0o644},
		{FileNetworkConfig, s.NetworkConfig, 0o644},
	}
}

type seedFile struct {
	name string
	data []byte
	mode os.FileMode
}

// WriteDir writes user-data, meta-data and network-config into dir (created
// if missing), each atomically: a temporary file in dir, synced, renamed.
func (s *Seed) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("writing seed: %w", err)
	}
	for _, f := range s.files() {
		if err := fsutil.WriteFileAtomic(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return fmt.Errorf("writing seed: %w", err)
		}
	}
	return nil
}

const isoBlock = 2048

// WriteSeedISO writes s as an ISO 9660 image labelled "cidata" with Rock
// Ridge and Joliet names (user-data, meta-data, network-config), the form
// Linux and cloud-init read by their exact names. The image is built in a
// temporary file next to path, read back and compared with s, then renamed
// into place (mode 0600: user-data holds the host private key).
func WriteSeedISO(path string, s *Seed) (err error) {
	if s == nil {
		return errors.New("writing seed image: nil seed")
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing seed image: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	work, err := os.MkdirTemp("", "guestcatalog-seed-*")
	if err != nil {
		return fmt.Errorf("writing seed image: %w", err)
	}
	defer os.RemoveAll(work)

	// go-diskfs writes the image at the size given here (it stays that size);
	// leave ample room for its descriptors, directories and path tables, then
	// cut the file to the volume size recorded in the primary descriptor.
	size := int64(1 << 20)
	for _, f := range s.files() {
		size += (int64(len(f.data)) + isoBlock - 1) / isoBlock * isoBlock
	}
	if err = tmp.Truncate(size); err != nil {
		return fmt.Errorf("writing seed image: %w", err)
	}
	fs, err := iso9660.Create(file.New(tmp, false), size, 0, isoBlock, work)
	if err != nil {
		return fmt.Errorf("writing seed image: %w", err)
	}
	for _, f := range s.files() {
		h, err := fs.OpenFile("/"+f.name, os.O_CREATE|os.O_RDWR)
		if err != nil {
			return fmt.Errorf("writing seed image: %s: %w", f.name, err)
		}
		_, err = h.Write(f.data)
		if cerr := h.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing seed image: %s: %w", f.name, err)
		}
	}
	// go-diskfs ignores a volume label given at creation for ISO 9660: the
	// identifier must come through FinalizeOptions.
	err = fs.Finalize(iso9660.FinalizeOptions{RockRidge: true, Joliet: true, VolumeIdentifier: VolumeLabel})
	if err != nil {
		return fmt.Errorf("writing seed image: %w", err)
	}
	// Primary volume descriptor (sector 16): volume space size, both-endian
	// uint32 at byte 80.
	pvd := make([]byte, 88)
	if _, err = tmp.ReadAt(pvd, 16*isoBlock); err != nil {
		return fmt.Errorf("writing seed image: reading volume descriptor: %w", err)
	}
	if pvd[0] != 1 || string(pvd[1:6]) != "CD001" {
		return errors.New("writing seed image: no primary volume descriptor after finalize")
	}
	if blocks := int64(binary.LittleEndian.Uint32(pvd[80:84])); blocks > 0 && blocks*isoBlock <= size {
		if err = tmp.Truncate(blocks * isoBlock); err != nil {
			return fmt.Errorf("writing seed image: %w", err)
		}
	}
	if err = tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("writing seed image: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("writing seed image: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("writing seed image: %w", err)
	}
	// go-diskfs drops write errors while finalizing: read the image back.
	back, label, err := readSeedISO(tmp.Name())
	if err != nil {
		return fmt.Errorf("writing seed image: reading it back: %w", err)
	}
	if label != VolumeLabel {
		return fmt.Errorf("writing seed image: label reads back as %q, want %q", label, VolumeLabel)
	}
	for i, f := range back.files() {
		if want := s.files()[i]; !bytes.Equal(f.data, want.data) {
			return fmt.Errorf("writing seed image: %s reads back different (%d bytes, want %d)", f.name, len(f.data), len(want.data))
		}
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing seed image: %w", err)
	}
	return nil
}

// readSeedISO reads the three seed files and the volume label from an ISO
// written by WriteSeedISO (Rock Ridge names).
func readSeedISO(path string) (*Seed, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, "", err
	}
	fs, err := iso9660.Read(file.New(f, true), st.Size(), 0, isoBlock)
	if err != nil {
		return nil, "", err
	}
	read := func(name string) ([]byte, error) {
		h, err := fs.OpenFile("/"+name, os.O_RDONLY)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		defer h.Close()
		return io.ReadAll(h)
	}
	var s Seed
	for _, dst := range []struct {
		name string
		data *[]byte
	}{{FileUserData, &s.UserData}, {FileMetaData, &s.MetaData}, {FileNetworkConfig, &s.NetworkConfig}} {
		if *dst.data, err = read(dst.name); err != nil {
			return nil, "", err
		}
	}
	return &s, strings.TrimRight(fs.Label(), " \x00"), nil
}
