package isolation

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Leftovers is what a closed guest must not leave behind.
type Leftovers struct {
	// QEMUPid was the guest's QEMU process.
	QEMUPid int
	// ProxyAddr was the egress proxy's listener ("" without proxy).
	ProxyAddr string
	// Listeners are other host addresses the guest had (SSH forward).
	Listeners []string
	// RunDir was the guest's run directory.
	RunDir string
}

// CheckTeardown runs after the guest was closed: no QEMU process, no proxy
// listener or relay process (a relay's command line names the proxy
// address), no forwarded port still listening, no run directory.
func CheckTeardown(l Leftovers) Result {
	start := time.Now()
	var left []string
	if l.QEMUPid > 0 && processAlive(l.QEMUPid) {
		left = append(left, fmt.Sprintf("QEMU pid %d still runs", l.QEMUPid))
	}
	addrs := append([]string(nil), l.Listeners...)
	if l.ProxyAddr != "" {
		addrs = append(addrs, l.ProxyAddr)
		if pids := processesNaming(l.ProxyAddr); len(pids) > 0 {
			left = append(left, fmt.Sprintf("processes naming the proxy %s: %v", l.ProxyAddr, pids))
		}
	}
	for _, a := range addrs {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			_ = c.Close()
			left = append(left, a+" still accepts connections")
		}
	}
	if l.RunDir != "" {
		if _, err := os.Stat(l.RunDir); err == nil {
			left = append(left, "run dir "+l.RunDir+" still exists")
		}
	}
	r := Result{Property: PropTeardown, Seconds: time.Since(start).Seconds()}
	if len(left) > 0 {
		r.Status, r.Detail = NotHeld, strings.Join(left, "; ")
	} else {
		r.Status, r.Detail = Held, fmt.Sprintf("no QEMU (pid %d), no listener on %v, no relay, no run dir", l.QEMUPid, addrs)
	}
	return r
}

// processAlive says whether pid runs (a zombie counts as gone).
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// comm may hold spaces: the state follows the last ')'.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && len(s) > i+2 {
		return s[i+2] != 'Z'
	}
	return true
}

// processesNaming lists processes whose command line contains s.
func processesNaming(s string) []int {
	ents, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var pids []int
	self := os.Getpid()
	for _, e := range ents {
		b, err := os.ReadFile(e)
		if err != nil || !strings.Contains(string(b), s) {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(filepath.Dir(e)), "%d", &pid); err == nil && pid != self {
			pids = append(pids, pid)
		}
	}
	return pids
}
