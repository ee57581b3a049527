package imagebuild

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// tailLines of a failed command's output go into its error.
const tailLines = 25

// run runs a build command in dir, streaming its output lines to the
// configured output. On cancellation the command's process group gets
// SIGTERM first (mmdebstrap then unmounts what it mounted in the root
// directory), SIGKILL 30 s later.
func (b *builder) run(ctx context.Context, dir, prog string, args ...string) error {
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "LC_ALL=C.UTF-8", "DEBIAN_FRONTEND=noninteractive", "TMPDIR="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	tail := &tailWriter{out: b.o.output, max: tailLines, start: time.Now()}
	cmd.Stdout, cmd.Stderr = tail, tail
	b.log.Debug("running", "cmd", prog, "args", args)
	err := cmd.Run()
	tail.flush()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", filepath.Base(prog), ctx.Err())
		}
		return fmt.Errorf("%s %s: %w; last output:\n%s", filepath.Base(prog), strings.Join(args, " "), err, tail.String())
	}
	return nil
}

// output runs a short query command and returns its stdout.
func (b *builder) output(ctx context.Context, prog string, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", filepath.Base(prog), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// tailWriter copies whole lines to out, prefixed with the time since start
// (when set), and keeps the last max of them.
type tailWriter struct {
	mu      sync.Mutex
	out     io.Writer
	max     int
	start   time.Time
	partial []byte
	lines   []string
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = append(t.partial, p...)
	for {
		i := bytes.IndexAny(t.partial, "\r\n")
		if i < 0 {
			break
		}
		line := string(t.partial[:i])
		t.partial = t.partial[i+1:]
		if strings.TrimSpace(line) != "" {
			t.add(line)
		}
	}
	return len(p), nil
}

func (t *tailWriter) add(line string) {
	if t.start.IsZero() {
		fmt.Fprintln(t.out, line)
	} else {
		fmt.Fprintf(t.out, "  [%5.1fs] %s\n", time.Since(t.start).Seconds(), line)
	}
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

func (t *tailWriter) flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := strings.TrimSpace(string(t.partial)); s != "" {
		t.add(s)
	}
	t.partial = nil
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// mountsUnder lists the mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dir = filepath.Clean(dir)
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, sc.Err()
}

// unescapeMount decodes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%3o", &c); err == nil {
				b.WriteByte(byte(c))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeBuildDir deletes a build directory. A bootstrap that was killed
// may have left /proc, /sys or /dev mounted inside it: those are detached
// first, and if any remains, nothing is deleted (deleting through a bind
// mount of /dev would delete the host's device nodes).
func removeBuildDir(dir string) error {
	mounts, err := mountsUnder(dir)
	if err != nil {
		return fmt.Errorf("checking mounts under %s: %w", dir, err)
	}
	for _, mp := range mounts {
		_ = unix.Unmount(mp, unix.MNT_DETACH)
	}
	if len(mounts) > 0 {
		if left, err := mountsUnder(dir); err != nil || len(left) > 0 {
			return fmt.Errorf("not removing %s: still mounted: %s", dir, strings.Join(left, ", "))
		}
	}
	return os.RemoveAll(dir)
}

// removeStale deletes temporary directories of earlier builds of key that
// died (the caller holds the entry's lock, so nobody else is building it).
func removeStale(imagesDir, key string, log *slog.Logger) {
	stale, _ := filepath.Glob(filepath.Join(imagesDir, ".tmp-"+key+"-*"))
	for _, d := range stale {
		if err := removeBuildDir(d); err != nil {
			log.Warn("could not remove a stale build dir", "dir", d, "err", err)
		} else {
			log.Info("removed a stale build dir", "dir", d)
		}
	}
}
