package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"sort"
)

// EmbeddedDigest is "sha256:<hex>" over the shipped templates: every
// embedded file's path and bytes, in path order. Two builds with the same
// digest ship the same catalog, so a report can be tied to it.
func EmbeddedDigest() (string, error) {
	var paths []string
	err := fs.WalkDir(templatesFS, embeddedRoot, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			paths = append(paths, p)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	sort.Strings(paths)
	h := sha256.New()
	for _, p := range paths {
		data, err := templatesFS.ReadFile(p)
		if err != nil {
			return "", err
		}
		// Length-prefixed, so no two trees hash alike by moving bytes
		// between a name and a body.
		writeField(h, []byte(p))
		writeField(h, data)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func writeField(h interface{ Write([]byte) (int, error) }, b []byte) {
	var n [8]byte
	l := uint64(len(b))
	for i := range n {
		n[i] = byte(l >> (8 * (7 - i)))
	}
	_, _ = h.Write(n[:])
	_, _ = h.Write(b)
}
