package framework

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/guestcatalog/guestcatalog/framework/machine"
)

// Phases the run adds to the machine's (machine.Phase*): the image and
// each spec ("check", with Step the spec's text).
const (
	PhaseImage = "image"
	PhaseCheck = "check"
	// EventProgress is a line of output of a long phase (an image build):
	// Detail holds the line. Renderers throttle these.
	EventProgress = "progress"
)

// WithEvents sends live progress to fn: the image phase, the machine's
// phases and provisioning steps (machine.Config.OnEvent), each spec as it
// starts and ends, and image build output lines (EventProgress; the full
// output then goes to <artifacts>/<template>/image-build.log instead of the
// progress writer, unless verbose). fn must not block.
func WithEvents(fn func(machine.Event)) RunOption { return func(r *Run) { r.onEvent = fn } }

// WithLinePrefix puts "[template] " before every check and READY line
// (runs of several templates).
func WithLinePrefix(on bool) RunOption { return func(r *Run) { r.linePrefix = on } }

func (r *Run) emit(ev machine.Event) {
	if r.onEvent == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	r.onEvent(ev)
}

func (r *Run) prefix(template string) string {
	if r.linePrefix {
		return "[" + template + "] "
	}
	return ""
}

// SpecStarting reports a spec of template as it starts (ReportBeforeEach).
func (r *Run) SpecStarting(template string, s types.SpecReport) {
	if s.LeafNodeType != types.NodeTypeIt {
		return
	}
	r.emit(machine.Event{Template: template, Kind: machine.EventStart, Phase: PhaseCheck, Step: s.LeafNodeText})
}

// imageProgress is where image download and build output goes: with events
// and without verbose, a log file in the template's artifacts plus one
// progress event per line; else the progress writer.
func (r *Run) imageProgress(template, artifacts string) (io.Writer, func()) {
	if r.onEvent == nil || r.verbose {
		return r.progress, func() {}
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		return r.progress, func() {}
	}
	f, err := os.Create(filepath.Join(artifacts, "image-build.log"))
	if err != nil {
		return r.progress, func() {}
	}
	lw := &lineEvents{file: f, emit: func(line string) {
		r.emit(machine.Event{Template: template, Kind: EventProgress, Phase: PhaseImage, Detail: line})
	}}
	return lw, func() { _ = f.Close() }
}

// lineEvents copies everything to file and emits each line (a carriage
// return ends a line too: download progress redraws with \r).
type lineEvents struct {
	mu   sync.Mutex
	file io.Writer
	emit func(string)
	buf  []byte
}

func (l *lineEvents) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.file.Write(b)
	l.buf = append(l.buf, b...)
	for {
		i := bytes.IndexAny(l.buf, "\r\n")
		if i < 0 {
			break
		}
		if line := bytes.TrimSpace(l.buf[:i]); len(line) > 0 {
			l.emit(string(line))
		}
		l.buf = l.buf[i+1:]
	}
	return len(b), nil
}
