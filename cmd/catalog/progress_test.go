package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework"
	"github.com/guestcatalog/guestcatalog/framework/machine"
	"github.com/guestcatalog/guestcatalog/framework/report"
)

// fakeEvents is a boot of one template as the run reports it.
func fakeEvents(t0 time.Time, tmpl string) []machine.Event {
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	return []machine.Event{
		{Template: tmpl, Kind: machine.EventStart, Phase: framework.PhaseImage, Time: at(0)},
		{Template: tmpl, Kind: framework.EventProgress, Phase: framework.PhaseImage, Detail: "I: running mmdebstrap", Time: at(1)},
		{Template: tmpl, Kind: framework.EventProgress, Phase: framework.PhaseImage, Detail: "I: extracting 200 packages", Time: at(2)},
		{Template: tmpl, Kind: framework.EventProgress, Phase: framework.PhaseImage, Detail: "I: installing", Time: at(12)},
		{Template: tmpl, Kind: machine.EventEnd, Phase: framework.PhaseImage, Result: machine.ResultOK, Elapsed: 20 * time.Second, Time: at(20)},
		{Template: tmpl, Kind: machine.EventStart, Phase: machine.PhaseKernel, Time: at(21)},
		{Template: tmpl, Kind: machine.EventEnd, Phase: machine.PhaseKernel, Result: machine.ResultOK, Elapsed: 4100 * time.Millisecond, Time: at(25.1)},
		{Template: tmpl, Kind: machine.EventStart, Phase: machine.PhaseCloudInit, Time: at(40)},
		{Template: tmpl, Kind: machine.EventStep, Phase: machine.PhaseCloudInit, Step: "01-docker", Time: at(41)},
		{Template: tmpl, Kind: machine.EventStep, Phase: machine.PhaseCloudInit, Step: "01-docker", Result: machine.ResultOK, Elapsed: 30 * time.Second, Time: at(71)},
		{Template: tmpl, Kind: machine.EventEnd, Phase: machine.PhaseCloudInit, Result: machine.ResultFailed, Detail: "provisioning failed\nmore", Elapsed: 35 * time.Second, Time: at(75)},
		{Template: tmpl, Kind: machine.EventStart, Phase: framework.PhaseCheck, Step: "docker: run", Time: at(80)},
	}
}

func TestRendererPlainOneLinePerEvent(t *testing.T) {
	var out bytes.Buffer
	r := newRenderer(&out, nil, false, false, false)
	t0 := time.Date(2026, 12, 7, 3, 0, 0, 0, time.Local)
	for _, ev := range fakeEvents(t0, "debian-13-docker") {
		r.Event(ev)
	}
	assert.Equal(t, `03:00:00 [debian-13-docker] phase image started
03:00:01 [debian-13-docker] image: I: running mmdebstrap
03:00:12 [debian-13-docker] image: I: installing
03:00:20 [debian-13-docker] phase image done 20.0s
03:00:21 [debian-13-docker] phase kernel started
03:00:25 [debian-13-docker] phase kernel done 4.1s
03:00:40 [debian-13-docker] phase cloud-init started
03:01:11 [debian-13-docker] step 01-docker done 30s
03:01:15 [debian-13-docker] phase cloud-init failed 35.0s: provisioning failed
`, out.String(), "image output at most every 10 s; no step start, no check start without -v")
	assert.NotContains(t, out.String(), "\r")
}

func TestRendererQuietAndJSON(t *testing.T) {
	var out, js bytes.Buffer
	r := newRenderer(&out, &js, false, true, false)
	evs := fakeEvents(time.Now(), "t")
	for _, ev := range evs {
		r.Event(ev)
	}
	assert.Empty(t, out.String(), "-q: verdicts only")
	lines := strings.Split(strings.TrimSpace(js.String()), "\n")
	require.Len(t, lines, len(evs), "every event, one JSON line")
	var e jsonEvent
	require.NoError(t, json.Unmarshal([]byte(lines[6]), &e))
	assert.Equal(t, jsonEvent{Time: e.Time, Template: "t", Kind: "end", Phase: "kernel", Result: "ok", Seconds: 4.1}, e)
}

// On a terminal the status line is redrawn as time passes: the elapsed
// seconds tick even when no event comes.
func TestRendererTTYStatusTicks(t *testing.T) {
	var out bytes.Buffer
	r := newRenderer(&out, nil, true, false, false)
	now := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return now }
	r.Event(machine.Event{Template: "a", Kind: machine.EventStart, Phase: machine.PhaseKernel, Time: now})
	var shown []string
	for range 5 {
		now = now.Add(3 * time.Second)
		out.Reset()
		r.Tick()
		shown = append(shown, out.String())
	}
	assert.Equal(t, "\r\x1b[K[a] kernel 3s (total 3s)", shown[0])
	assert.Equal(t, "\r\x1b[K[a] kernel 15s (total 15s)", shown[4])
	out.Reset()
	_, _ = r.Writer().Write([]byte("  PASS  1.0s  x\n"))
	assert.Equal(t, "\r\x1b[K  PASS  1.0s  x\n\r\x1b[K[a] kernel 15s (total 15s)", out.String(), "a line goes above the status line")
	r.Done("a")
	out.Reset()
	r.Tick()
	assert.Empty(t, out.String(), "no status once the template is done")
}

func TestSummaryTable(t *testing.T) {
	var out bytes.Buffer
	printSummaryTable(&out, []*report.Template{
		{Template: "b", Arch: "x86_64", Accelerator: "tcg", Result: report.Pass, Seconds: 61, Checks: []report.Check{{Name: "x", Result: report.Pass, Attempts: 2}}},
		{Template: "a", Arch: "x86_64", Result: report.Skip},
	})
	assert.Equal(t, `
TEMPLATE  ARCH    ACCELERATOR  RESULT   TIME   FLAKY
a         x86_64  -            SKIPPED  0s     no
b         x86_64  tcg          PASS     1m01s  yes
`, out.String())
}

// verify --parallel prefixes its children's lines with their template,
// except the event lines that already carry it.
func TestPrefixWriterNoDoublePrefix(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	w := &prefixWriter{mu: &mu, w: &out, prefix: "[a] "}
	_, _ = w.Write([]byte("03:00:00 [a] phase kernel done 1.0s\n  PASS  1.0s  x\n"))
	assert.Equal(t, "03:00:00 [a] phase kernel done 1.0s\n[a]   PASS  1.0s  x\n", out.String())
}

// Templates of one process run one after the other: the next one's start
// ends the previous one's status.
func TestRendererNextTemplateEndsStatus(t *testing.T) {
	var out bytes.Buffer
	r := newRenderer(&out, nil, true, false, false)
	now := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return now }
	r.Event(machine.Event{Template: "a", Kind: machine.EventStart, Phase: framework.PhaseCheck, Step: "x", Time: now})
	r.Event(machine.Event{Template: "b", Kind: machine.EventStart, Phase: framework.PhaseImage, Time: now})
	out.Reset()
	now = now.Add(time.Second)
	r.Tick()
	assert.Equal(t, "\r\x1b[K[b] image 1s (total 1s)", out.String())
}
