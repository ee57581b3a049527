package qemutest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Processes lists the live processes (zombies left out) whose command
// line holds s, such as a run or instance directory: what a test checks
// is gone after cleanup. qemuOnly keeps QEMU's only (the program's base
// name starts with "qemu"); otherwise helpers naming s count too.
func Processes(s string, qemuOnly bool) []int {
	var pids []int
	des, _ := os.ReadDir("/proc")
	for _, de := range des {
		pid, err := strconv.Atoi(de.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", de.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), s) ||
			qemuOnly && !strings.HasPrefix(filepath.Base(strings.SplitN(string(b), "\x00", 2)[0]), "qemu") {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", de.Name(), "stat")); err == nil && strings.Contains(string(st), ") Z ") {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}
