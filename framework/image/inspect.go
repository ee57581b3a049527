package image

import (
	"path"
	"strings"

	"github.com/guestcatalog/guestcatalog/framework/qemu"
)

// Inspection errors (framework/qemu's): wrapped when an image is refused.
// Never a reason to try the next entry.
var (
	// ErrUnsafeImage: the image names a backing file or an external data
	// file (booting it would read files of the host into the guest).
	ErrUnsafeImage = qemu.ErrUnsafeImage
	// ErrFormatMismatch: the image is not in the format its name declares.
	ErrFormatMismatch = qemu.ErrFormatMismatch
	// ErrUnsupportedFormat: neither qcow2 nor raw.
	ErrUnsupportedFormat = qemu.ErrUnsupportedFormat
)

// declaredFormat is the format a downloaded file's name declares: .qcow2
// and .raw name theirs; anything else (upstream "*.img") may be either.
func declaredFormat(name string) string {
	name = strings.ToLower(path.Base(name))
	for _, c := range []string{".xz", ".gz", ".zst", ".bz2"} {
		name = strings.TrimSuffix(name, c)
	}
	switch path.Ext(name) {
	case ".qcow2":
		return FormatQcow2
	case ".raw":
		return FormatRaw
	}
	return ""
}
