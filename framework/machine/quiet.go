package machine

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// quietWindow, quietTicks: a guest is quiet when its QEMU used at most
// quietTicks clock ticks (1/100 s) of CPU in each of two consecutive
// quietWindows: under 10% of a core, what an idle TCG guest costs.
const (
	quietWindow = 250 * time.Millisecond
	quietTicks  = 2
)

// waitQuiet waits, at most max, until the guest is quiet (quietWindow).
// Save calls it after closing its SSH connection: the guest still ends
// that session (sshd, PAM, logind, the session scope), and a guest saved
// before that does it again after every resume, on the CPU the first
// connection then needs. It returns how long it waited and whether the
// guest became quiet.
func waitQuiet(ctx context.Context, pid int, max time.Duration) (time.Duration, bool) {
	start := time.Now()
	prev, err := cpuTicks(pid)
	if err != nil {
		return 0, false
	}
	quiet := 0
	t := time.NewTicker(quietWindow)
	defer t.Stop()
	for time.Since(start) < max {
		select {
		case <-ctx.Done():
			return time.Since(start), false
		case <-t.C:
		}
		cur, err := cpuTicks(pid)
		if err != nil {
			return time.Since(start), false
		}
		if cur-prev <= quietTicks {
			quiet++
		} else {
			quiet = 0
		}
		prev = cur
		if quiet >= 2 {
			return time.Since(start), true
		}
	}
	return time.Since(start), false
}

// cpuTicks is a process's user+system CPU time in clock ticks, from
// /proc/PID/stat (fields 14 and 15; the command name, field 2, may hold
// spaces and parentheses, so fields are counted after its last ')').
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseCPUTicks(string(b))
}

func parseCPUTicks(stat string) (int64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat without a command name: %.40q", stat)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat has %d fields after the name, want 13 or more", len(f))
	}
	u, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("utime: %w", err)
	}
	s, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stime: %w", err)
	}
	return u + s, nil
}
