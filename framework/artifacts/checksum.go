package artifacts

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrNoChecksum is wrapped when a checksum file has no digest for the name.
var ErrNoChecksum = errors.New("no checksum for the file")

var (
	hexDigest = regexp.MustCompile(`^([0-9a-fA-F]{64}|[0-9a-fA-F]{128})$`)
	// BSD style, as `sha256sum --tag` and shasum write it.
	bsdLine = regexp.MustCompile(`^(SHA256|SHA512) \((.+)\) = ([0-9a-fA-F]+)$`)
)

// maxChecksumFile bounds what is read of a checksum file: real ones are a
// few KiB (k3s's lists some 20 files).
const maxChecksumFile = 1 << 20

// ParseChecksumFile returns the digest ("sha256:<hex>" or "sha512:<hex>",
// the algorithm told by the length) that a release's checksum file gives
// name. It reads sha256sum's "<hex>  <name>" lines (a leading '*' of
// binary mode and a leading "./" are ignored), BSD "SHA256 (<name>) = <hex>"
// lines, and, when name is empty, a file holding a single digest (with or
// without a file name after it), as dl.k8s.io's <file>.sha256 does. A name
// listed twice with different digests is an error.
func ParseChecksumFile(data []byte, name string) (string, error) {
	if len(data) > maxChecksumFile {
		return "", fmt.Errorf("checksum file is %d bytes, more than %d", len(data), maxChecksumFile)
	}
	var found []string
	var all []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), maxChecksumFile)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var hex, file string
		if m := bsdLine.FindStringSubmatch(line); m != nil {
			hex, file = m[3], m[2]
		} else {
			fields := strings.Fields(line)
			hex = fields[0]
			if len(fields) > 1 {
				file = strings.Join(fields[1:], " ")
			}
		}
		if !hexDigest.MatchString(hex) {
			continue
		}
		d := digestOf(hex)
		all = append(all, d)
		file = strings.TrimPrefix(strings.TrimPrefix(file, "*"), "./")
		if name != "" && file == name {
			found = append(found, d)
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("reading checksum file: %w", err)
	}
	if name == "" {
		if len(all) != 1 {
			return "", fmt.Errorf("%w: the checksum file lists %d digests and the artifact names no file to look up (checksumFile.name)", ErrNoChecksum, len(all))
		}
		return all[0], nil
	}
	switch {
	case len(found) == 0:
		return "", fmt.Errorf("%w: %q is not listed", ErrNoChecksum, name)
	case len(found) > 1:
		for _, d := range found[1:] {
			if d != found[0] {
				return "", fmt.Errorf("%q is listed with different digests", name)
			}
		}
	}
	return found[0], nil
}

func digestOf(hex string) string {
	hex = strings.ToLower(hex)
	if len(hex) == 128 {
		return "sha512:" + hex
	}
	return "sha256:" + hex
}
