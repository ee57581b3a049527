package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// DefaultPoll is how often a followed file is checked for new bytes.
const DefaultPoll = 50 * time.Millisecond

// maxLine bounds a line kept in memory; longer lines are split.
const maxLine = 64 << 10

// Line is one console line.
type Line struct {
	// Text is the cleaned line (see Clean); Raw is as written, without the
	// trailing newline.
	Text, Raw string
	// Num counts lines from 1. A Partial line is emitted again, complete
	// and with the same Num, when its newline arrives.
	Num int
	// Offset is the byte offset of the line's start in the file.
	Offset int64
	// Partial: no newline yet when the writer paused (a login prompt).
	Partial bool
	// At is when the line was read.
	At time.Time
}

// FollowOption configures Follow, Watch and Wait.
type FollowOption func(*followConfig)

type followConfig struct {
	poll time.Duration
	stop <-chan struct{}
}

// WithPoll sets how often the file is checked (default DefaultPoll).
func WithPoll(d time.Duration) FollowOption {
	return func(c *followConfig) {
		if d > 0 {
			c.poll = d
		}
	}
}

// WithStop ends following once stop is closed (e.g. the QEMU process
// exited): the file is read to its end, a pending partial line is
// emitted as the last line, and the channel is closed.
func WithStop(stop <-chan struct{}) FollowOption {
	return func(c *followConfig) { c.stop = stop }
}

// Follow emits the lines of a file as it grows, from its beginning. The
// file need not exist yet. If it is replaced or truncated, following
// restarts at the new file's beginning (line numbers keep counting). The
// channel is closed when ctx ends or after a WithStop channel closes.
func Follow(ctx context.Context, path string, opts ...FollowOption) <-chan Line {
	cfg := followConfig{poll: DefaultPoll}
	for _, o := range opts {
		o(&cfg)
	}
	out := make(chan Line, 64)
	go func() {
		defer close(out)
		f := &follower{path: path, out: out, quiet: max(4*cfg.poll, 200*time.Millisecond)}
		defer f.close()
		t := time.NewTicker(cfg.poll)
		defer t.Stop()
		for {
			if !f.readAvailable(ctx) {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-cfg.stop:
				if f.readAvailable(ctx) {
					f.flush(ctx)
				}
				return
			case <-t.C:
			}
		}
	}()
	return out
}

type follower struct {
	path    string
	out     chan<- Line
	file    *os.File
	info    os.FileInfo
	off     int64 // bytes of the current file consumed into lines or pending
	pending []byte
	pendOff int64
	num     int
	// partialSent: the pending bytes were already emitted as Partial.
	partialSent int
	// pendSince: when pending last grew; a partial line is emitted only
	// once the writer has been quiet for quiet.
	pendSince time.Time
	quiet     time.Duration
	buf       []byte
}

func (f *follower) close() {
	if f.file != nil {
		f.file.Close()
		f.file = nil
	}
}

// readAvailable reads what the file holds now and emits complete lines,
// and the pending partial line when it changed. It returns false when ctx
// ended while sending.
func (f *follower) readAvailable(ctx context.Context) bool {
	if f.file == nil {
		file, err := os.Open(f.path)
		if err != nil {
			return true // not there yet; try again later
		}
		f.file = file
		f.info, _ = file.Stat()
	} else if st, err := os.Stat(f.path); err == nil && (!os.SameFile(st, f.info) || st.Size() < f.off) {
		// Replaced or truncated: drain nothing more from the old one.
		f.close()
		f.off, f.pending, f.partialSent = 0, nil, 0
		return f.readAvailable(ctx)
	}
	if f.buf == nil {
		f.buf = make([]byte, 32<<10)
	}
	for {
		n, err := f.file.ReadAt(f.buf, f.off)
		if n > 0 {
			if !f.consume(ctx, f.buf[:n]) {
				return false
			}
		}
		if err != nil || n == 0 {
			if err != nil && !errors.Is(err, io.EOF) {
				return true // transient; next tick
			}
			break
		}
	}
	// The writer paused mid-line: emit what there is as a partial line.
	if len(f.pending) > 0 && len(f.pending) != f.partialSent && time.Since(f.pendSince) >= f.quiet {
		f.partialSent = len(f.pending)
		return f.emit(ctx, f.pending, f.pendOff, true, f.num+1)
	}
	return true
}

func (f *follower) consume(ctx context.Context, b []byte) bool {
	for len(b) > 0 {
		if len(f.pending) == 0 {
			f.pendOff = f.off
		}
		f.pendSince = time.Now()
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			take := min(len(b), maxLine-len(f.pending))
			f.pending = append(f.pending, b[:take]...)
			f.off += int64(take)
			b = b[take:]
			if len(f.pending) >= maxLine {
				if !f.completeLine(ctx) {
					return false
				}
			}
			continue
		}
		f.pending = append(f.pending, b[:i]...)
		f.off += int64(i + 1)
		b = b[i+1:]
		if !f.completeLine(ctx) {
			return false
		}
	}
	return true
}

func (f *follower) completeLine(ctx context.Context) bool {
	f.num++
	ok := f.emit(ctx, f.pending, f.pendOff, false, f.num)
	f.pending, f.partialSent = f.pending[:0], 0
	return ok
}

func (f *follower) flush(ctx context.Context) {
	if len(f.pending) > 0 {
		f.completeLine(ctx)
	}
}

func (f *follower) emit(ctx context.Context, raw []byte, off int64, partial bool, num int) bool {
	r := strings.TrimRight(string(raw), "\r")
	l := Line{Text: Clean(r), Raw: r, Num: num, Offset: off, Partial: partial, At: time.Now()}
	select {
	case f.out <- l:
		return true
	case <-ctx.Done():
		return false
	}
}

// Match is a console line that matched a pattern.
type Match struct {
	Pattern Pattern
	Line    Line
}

func (m Match) String() string {
	return fmt.Sprintf("%s (line %d: %q)", m.Pattern.Name, m.Line.Num, m.Line.Text)
}

// WatchWith is Watch with follow options.
func WatchWith(ctx context.Context, path string, opts []FollowOption, patterns ...Pattern) <-chan Match {
	out := make(chan Match, 16)
	lines := Follow(ctx, path, opts...)
	go func() {
		defer close(out)
		sent := map[string]int{} // pattern name → line number matched as partial
		for l := range lines {
			p, ok := Classify(l.Text, patterns...)
			if !ok {
				continue
			}
			if n, dup := sent[p.Name]; dup && n == l.Num {
				continue
			}
			if l.Partial {
				sent[p.Name] = l.Num
			}
			select {
			case out <- Match{Pattern: p, Line: l}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// ErrStopped means the console ended (WithStop) before a wanted pattern.
var ErrStopped = errors.New("console ended")

// FailureError is returned by Wait when a failure pattern matched.
type FailureError struct{ Match Match }

func (e *FailureError) Error() string {
	return fmt.Sprintf("guest console shows %s: %q", e.Match.Pattern.Name, e.Match.Line.Text)
}

// WaitError is returned by Wait when the wanted patterns did not show up
// before ctx ended or the console stopped. It unwraps to ctx's error or to
// ErrStopped.
type WaitError struct {
	Want     []string
	LastLine string // the last non-empty console line, cleaned
	Lines    int    // lines read
	Err      error
}

func (e *WaitError) Error() string {
	last := "console is empty"
	if e.LastLine != "" {
		last = fmt.Sprintf("last line: %q", e.LastLine)
	}
	return fmt.Sprintf("waiting for %s on the console: %v (%s)", strings.Join(e.Want, " or "), e.Err, last)
}

func (e *WaitError) Unwrap() error { return e.Err }

// WaitInput says what Wait waits for.
type WaitInput struct {
	// Path of the console log.
	Path string
	// Want: Wait returns the first line that matches one of these.
	Want []Pattern
	// Fail: a match returns *FailureError. Nil means FailurePatterns();
	// an empty non-nil slice disables failure detection.
	Fail []Pattern
	// Options for Follow (WithStop, WithPoll).
	Options []FollowOption
}

// Wait follows a console until a wanted pattern matches (returns the
// match), a failure pattern matches (*FailureError), or ctx ends or the
// console stops (*WaitError with the last line seen).
func Wait(ctx context.Context, in WaitInput) (Match, error) {
	if len(in.Want) == 0 {
		return Match{}, errors.New("console.Wait: WaitInput.Want is empty")
	}
	fail := in.Fail
	if fail == nil {
		fail = FailurePatterns()
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	names := make([]string, len(in.Want))
	for i, p := range in.Want {
		names[i] = p.Name
	}
	var last string
	n := 0
	for l := range Follow(wctx, in.Path, in.Options...) {
		if !l.Partial {
			n = l.Num
		}
		if strings.TrimSpace(l.Text) != "" {
			last = l.Text
		}
		for _, p := range fail {
			if p.Re.MatchString(l.Text) {
				return Match{Pattern: p, Line: l}, &FailureError{Match: Match{Pattern: p, Line: l}}
			}
		}
		for _, p := range in.Want {
			if p.Re.MatchString(l.Text) {
				return Match{Pattern: p, Line: l}, nil
			}
		}
	}
	err := ctx.Err()
	if err == nil {
		err = ErrStopped
	}
	return Match{}, &WaitError{Want: names, LastLine: last, Lines: n, Err: err}
}

// Tail returns the last n lines of a file, cleaned (see Clean), without
// trailing empty lines. A missing file gives no lines and no error.
func Tail(path string, n int) ([]string, error) {
	if n <= 0 {
		return nil, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	chunk := int64(max(n*256, 16<<10))
	var data []byte
	for {
		start := max(size-chunk, 0)
		data = make([]byte, size-start)
		if _, err := f.ReadAt(data, start); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if start == 0 || bytes.Count(data, []byte{'\n'}) > n+1 || chunk >= 4<<20 {
			if start > 0 {
				// Drop the first, probably cut, line.
				if i := bytes.IndexByte(data, '\n'); i >= 0 {
					data = data[i+1:]
				}
			}
			break
		}
		chunk *= 4
	}
	lines := strings.Split(string(data), "\n")
	for i := range lines {
		lines[i] = Clean(strings.TrimRight(lines[i], "\r"))
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines, nil
}

// LastLine returns the last non-empty cleaned line of a file ("" if none).
func LastLine(path string) string {
	lines, _ := Tail(path, 20)
	for i := len(lines) - 1; i >= 0; i-- {
		if s := strings.TrimSpace(lines[i]); s != "" {
			return s
		}
	}
	return ""
}
