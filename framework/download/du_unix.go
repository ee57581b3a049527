//go:build unix

package download

import (
	"os"
	"syscall"
)

// diskUsage is the space a file occupies (sparse files count their blocks).
func diskUsage(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}
