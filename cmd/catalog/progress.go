package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/guestcatalog/guestcatalog/framework"
	"github.com/guestcatalog/guestcatalog/framework/machine"
	"github.com/guestcatalog/guestcatalog/framework/report"
)

// isTerminal says w is a terminal (live status line) rather than a pipe or
// a file (one plain line per event).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressThrottle bounds how often a long phase's output lines (an image
// build's mmdebstrap lines) reach a plain log: the full output is in the
// artifacts.
const progressThrottle = 10 * time.Second

// renderer shows verify's live progress from the run's events. Plain (not
// a terminal): one line per event, "HH:MM:SS [template] phase kernel done
// 4.1s". On a terminal the same lines, and below them a status line that is
// redrawn every second (the elapsed time ticks) with each running
// template's current phase. Quiet: nothing (verdicts only). With a JSON
// writer every event is also one JSON line there.
type renderer struct {
	mu      sync.Mutex
	w       io.Writer // human lines
	jsonW   io.Writer // JSON lines of events; nil: none
	tty     bool
	quiet   bool
	verbose bool
	now     func() time.Time

	running  map[string]*liveState
	order    []string
	lastProg map[string]time.Time
	status   string // the status line on screen ("" none)
	stopped  bool   // Run ended: no status line any more
	// parallel: templates run side by side (verify --parallel), so one
	// template's start does not end the others' status.
	parallel bool
}

type liveState struct {
	phase, step string
	start       time.Time // the template's first event
	since       time.Time // the current phase's start
}

func newRenderer(w, jsonW io.Writer, tty, quiet, verbose bool) *renderer {
	return &renderer{w: w, jsonW: jsonW, tty: tty, quiet: quiet, verbose: verbose, now: time.Now,
		running: map[string]*liveState{}, lastProg: map[string]time.Time{}}
}

// jsonEvent is one line of `verify --output json`.
type jsonEvent struct {
	Time     string  `json:"time"`
	Template string  `json:"template"`
	Kind     string  `json:"kind"`
	Phase    string  `json:"phase"`
	Step     string  `json:"step,omitempty"`
	Result   string  `json:"result,omitempty"`
	Seconds  float64 `json:"seconds,omitempty"`
	Detail   string  `json:"detail,omitempty"`
}

// Event renders one event; safe for concurrent use.
func (r *renderer) Event(ev machine.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ev.Time.IsZero() {
		ev.Time = r.now()
	}
	if r.jsonW != nil {
		b, _ := json.Marshal(jsonEvent{Time: ev.Time.UTC().Format(time.RFC3339Nano), Template: ev.Template, Kind: ev.Kind, Phase: ev.Phase,
			Step: ev.Step, Result: ev.Result, Seconds: ev.Elapsed.Seconds(), Detail: ev.Detail})
		_, _ = r.jsonW.Write(append(b, '\n'))
	}
	r.track(ev)
	if r.quiet {
		return
	}
	if line, ok := r.line(ev); ok {
		r.printLocked(line + "\n")
	} else {
		r.redrawLocked()
	}
}

// Observe updates the status line from an event another process printed
// already (a verify --parallel child): no line, no JSON.
func (r *renderer) Observe(ev machine.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ev.Time.IsZero() {
		ev.Time = r.now()
	}
	r.track(ev)
	if !r.quiet {
		r.redrawLocked()
	}
}

// parseJSONEvent reads one line of `verify --output json` back into an
// event; ok is false for any other line.
func parseJSONEvent(line []byte) (machine.Event, bool) {
	var j jsonEvent
	if err := json.Unmarshal(line, &j); err != nil || j.Template == "" || j.Kind == "" {
		return machine.Event{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, j.Time)
	if err != nil {
		return machine.Event{}, false
	}
	return machine.Event{Time: t, Template: j.Template, Kind: j.Kind, Phase: j.Phase, Step: j.Step, Result: j.Result,
		Elapsed: time.Duration(j.Seconds * float64(time.Second)), Detail: j.Detail}, true
}

// track keeps each template's current phase for the status line.
func (r *renderer) track(ev machine.Event) {
	if ev.Kind == machine.EventStart && ev.Phase == framework.PhaseImage && !r.parallel {
		// One process verifies its templates one after the other: the
		// next template's start ends the others' status.
		for _, n := range append([]string(nil), r.order...) {
			if n != ev.Template {
				r.doneLocked(n)
			}
		}
	}
	s, ok := r.running[ev.Template]
	if !ok {
		s = &liveState{start: ev.Time, since: ev.Time}
		r.running[ev.Template] = s
		r.order = append(r.order, ev.Template)
	}
	switch {
	case ev.Kind == machine.EventStart:
		s.phase, s.step, s.since = ev.Phase, ev.Step, ev.Time
	case ev.Kind == machine.EventStep && ev.Result == "":
		s.step = ev.Step
	}
}

// Done ends a template's status (its verdict is known).
func (r *renderer) Done(template string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.doneLocked(template)
	r.redrawLocked()
}

func (r *renderer) doneLocked(template string) {
	delete(r.running, template)
	for i, n := range r.order {
		if n == template {
			r.order = append(r.order[:i], r.order[i+1:]...)
			break
		}
	}
}

// line is the plain line of an event, if it gets one.
func (r *renderer) line(ev machine.Event) (string, bool) {
	what := "phase " + ev.Phase
	if ev.Phase == framework.PhaseCheck {
		what = "check " + ev.Step
	}
	var s string
	switch ev.Kind {
	case machine.EventStart:
		if ev.Phase == framework.PhaseCheck && !r.verbose {
			return "", false // its PASS/FAIL line follows
		}
		s = what + " started"
	case machine.EventEnd:
		if ev.Phase == framework.PhaseCheck {
			return "", false // the framework prints the check's line
		}
		s = fmt.Sprintf("%s %s %.1fs", what, doneWord(ev.Result), ev.Elapsed.Seconds())
		if ev.Result != machine.ResultOK && ev.Detail != "" {
			s += ": " + firstLineOf(ev.Detail)
		} else if r.verbose && ev.Detail != "" {
			s += " (" + firstLineOf(ev.Detail) + ")"
		}
	case machine.EventStep:
		if ev.Result == "" {
			if !r.verbose {
				return "", false
			}
			s = "step " + ev.Step + " started"
		} else {
			s = fmt.Sprintf("step %s %s", ev.Step, doneWord(ev.Result))
			if ev.Elapsed > 0 {
				s += fmt.Sprintf(" %.0fs", ev.Elapsed.Seconds())
			}
		}
	case framework.EventProgress:
		if !r.verbose {
			if last, ok := r.lastProg[ev.Template]; ok && ev.Time.Sub(last) < progressThrottle {
				return "", false
			}
		}
		r.lastProg[ev.Template] = ev.Time
		s = ev.Phase + ": " + truncate(ev.Detail, 100)
	default:
		return "", false
	}
	return fmt.Sprintf("%s [%s] %s", ev.Time.Format("15:04:05"), ev.Template, s), true
}

func doneWord(result string) string {
	if result == machine.ResultOK {
		return "done"
	}
	return result
}

func firstLineOf(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// statusLine is the live line: each running template, its phase (and
// step) and elapsed times.
func (r *renderer) statusLine() string {
	now := r.now()
	var parts []string
	for _, n := range r.order {
		s := r.running[n]
		p := s.phase
		if s.step != "" {
			p += " " + truncate(s.step, 40)
		}
		parts = append(parts, fmt.Sprintf("[%s] %s %s (total %s)", n, p, fmtDur(now.Sub(s.since)), fmtDur(now.Sub(s.start))))
	}
	return strings.Join(parts, " | ")
}

func fmtDur(d time.Duration) string {
	d = d.Round(time.Second)
	if d < time.Minute {
		return fmt.Sprintf("%ds", int(d.Seconds()))
	}
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}

// printLocked writes text above the status line.
func (r *renderer) printLocked(text string) {
	r.clearLocked()
	_, _ = io.WriteString(r.w, text)
	r.redrawLocked()
}

func (r *renderer) clearLocked() {
	if r.tty && r.status != "" {
		_, _ = io.WriteString(r.w, "\r\x1b[K")
		r.status = ""
	}
}

func (r *renderer) redrawLocked() {
	if !r.tty || r.quiet || r.stopped {
		return
	}
	s := r.statusLine()
	if s == r.status {
		return
	}
	_, _ = io.WriteString(r.w, "\r\x1b[K"+s)
	r.status = s
}

// Tick redraws the status line (the elapsed times change).
func (r *renderer) Tick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.redrawLocked()
}

// Run redraws the status line every second until ctx ends (terminal only).
func (r *renderer) Run(ctx context.Context) {
	if !r.tty || r.quiet {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			r.mu.Lock()
			r.clearLocked()
			r.stopped = true
			r.mu.Unlock()
			return
		case <-t.C:
			r.Tick()
		}
	}
}

// Writer is a writer for other lines (check lines, verdicts) that keeps
// the status line below them.
func (r *renderer) Writer() io.Writer { return rendererWriter{r} }

type rendererWriter struct{ r *renderer }

func (w rendererWriter) Write(b []byte) (int, error) {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	w.r.printLocked(string(b))
	return len(b), nil
}

// printSummaryTable ends a verify: one row per template.
func printSummaryTable(w io.Writer, reps []*report.Template) {
	sorted := append([]*report.Template(nil), reps...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Template < sorted[j].Template })
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TEMPLATE\tARCH\tACCELERATOR\tRESULT\tTIME\tFLAKY")
	for _, r := range sorted {
		flaky := "no"
		if r.IsFlaky() {
			flaky = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Template, orDash(r.Arch), orDash(r.Accelerator), r.Result.Verdict(),
			fmtDur(time.Duration(r.Seconds*float64(time.Second))), flaky)
	}
	_ = tw.Flush()
}
