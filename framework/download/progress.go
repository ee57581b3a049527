package download

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress reports one Fetch. All methods are safe on the no-op reporter.
type progress interface {
	// begin: a transfer starts; size may be -1 (chunked), resumed > 0
	// when continuing a partial file.
	begin(size, resumed int64)
	update(done, size int64)
	finish(total, resumed int64)
	note(msg string)
}

func newProgress(cfg config, name string) progress {
	if cfg.progress == nil {
		return nopProgress{}
	}
	bar := isTerminal(cfg.progress)
	if cfg.progressBar != nil {
		bar = *cfg.progressBar
	}
	if bar {
		return &barProgress{w: cfg.progress, name: name}
	}
	return &lineProgress{w: cfg.progress, name: name, every: cfg.progressEvery, now: time.Now}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

type nopProgress struct{}

func (nopProgress) begin(int64, int64)  {}
func (nopProgress) update(int64, int64) {}
func (nopProgress) finish(int64, int64) {}
func (nopProgress) note(string)         {}

// lineProgress writes one line every `every` or each 10%:
//
//	downloading x.img: 312 MiB / 1.0 GiB (30%), 85 MiB/s, ETA 8s
type lineProgress struct {
	mu        sync.Mutex
	w         io.Writer
	name      string
	every     time.Duration
	now       func() time.Time
	started   time.Time // of the current transfer
	first     time.Time // of the whole fetch
	base      int64     // bytes already there when the transfer began
	lastPrint time.Time
	lastTenth int64
}

func (p *lineProgress) begin(size, resumed int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.started, p.lastPrint, p.base = now, now, resumed
	if p.first.IsZero() {
		p.first = now
	}
	p.lastTenth = -1
	if size > 0 {
		p.lastTenth = resumed * 10 / size
	}
	if resumed > 0 {
		fmt.Fprintf(p.w, "resuming %s at %s\n", p.name, FormatBytes(resumed))
	}
}

func (p *lineProgress) update(done, size int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started.IsZero() {
		return
	}
	now := p.now()
	tenth := int64(-1)
	if size > 0 {
		tenth = done * 10 / size
	}
	due := now.Sub(p.lastPrint) >= p.every
	if size > 0 && tenth > p.lastTenth && done < size {
		due = true
	}
	if !due {
		return
	}
	p.lastPrint, p.lastTenth = now, tenth
	fmt.Fprintln(p.w, formatProgress(p.name, done, size, done-p.base, now.Sub(p.started)))
}

func (p *lineProgress) finish(total, resumed int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started.IsZero() {
		return
	}
	d := p.now().Sub(p.started)
	rate := ""
	if d > 0 {
		rate = fmt.Sprintf(" (%s/s)", FormatBytes(int64(float64(total-p.base)/d.Seconds())))
	}
	fmt.Fprintf(p.w, "downloaded %s: %s in %s%s\n", p.name, FormatBytes(total), formatDuration(p.now().Sub(p.first)), rate)
}

func (p *lineProgress) note(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.w, msg)
}

// formatProgress is one progress line. moved bytes in elapsed give the rate
// (grab's own rate is 0 for the first second, so it is not used).
func formatProgress(name string, done, size, moved int64, elapsed time.Duration) string {
	s := fmt.Sprintf("downloading %s: %s", name, FormatBytes(done))
	if size > 0 {
		s += fmt.Sprintf(" / %s (%d%%)", FormatBytes(size), done*100/size)
	}
	if elapsed <= 0 || moved <= 0 {
		return s
	}
	rate := float64(moved) / elapsed.Seconds()
	s += fmt.Sprintf(", %s/s", FormatBytes(int64(rate)))
	if size > 0 && done < size {
		eta := time.Duration(float64(size-done) / rate * float64(time.Second))
		if eta < time.Second {
			s += ", ETA <1s"
		} else {
			s += ", ETA " + formatDuration(eta)
		}
	}
	return s
}

// FormatBytes formats a byte count in IEC units: 512 B, 1.5 KiB, 312 MiB, 1.0 GiB.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB"}
	i := -1
	for v >= unit && i < len(units)-1 {
		v /= unit
		i++
	}
	if v < 10 {
		return fmt.Sprintf("%.1f %s", v, units[i])
	}
	return fmt.Sprintf("%.0f %s", v, units[i])
}

// formatDuration: 8s, 1m12s, 2h3m0s; sub-second as 400ms.
func formatDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	default:
		return d.Round(time.Minute).String()
	}
}

// barProgress draws a progress bar (schollz/progressbar) on a terminal.
type barProgress struct {
	mu   sync.Mutex
	w    io.Writer
	name string
	bar  *progressbar.ProgressBar
	max  int64
}

func (p *barProgress) begin(size, resumed int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Exit()
	}
	p.max = size
	p.bar = progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(p.name),
		progressbar.OptionShowBytes(true),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) }),
	)
	if resumed > 0 {
		p.bar.Set64(resumed)
	}
}

func (p *barProgress) update(done, size int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar == nil {
		return
	}
	if size > 0 && size != p.max {
		p.max = size
		p.bar.ChangeMax64(size)
	}
	p.bar.Set64(done)
}

func (p *barProgress) finish(total, _ int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar == nil {
		return
	}
	if p.max <= 0 {
		p.bar.ChangeMax64(total)
	}
	p.bar.Set64(total)
	p.bar.Finish()
	p.bar = nil
}

func (p *barProgress) note(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Clear()
	}
	fmt.Fprintln(p.w, msg)
}
