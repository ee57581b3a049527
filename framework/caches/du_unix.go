//go:build unix

package caches

import (
	"os"
	"syscall"
)

// allocated is the space a file occupies (sparse files count their blocks).
func allocated(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}
