package framework

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/guestcatalog/guestcatalog/framework/machine"
	"github.com/guestcatalog/guestcatalog/framework/report"
)

// Image build output (mmdebstrap lines, download progress redrawn with \r)
// becomes one event per line, and all of it goes to the artifacts' log.
func TestImageProgressLinesAndLog(t *testing.T) {
	var evs []machine.Event
	r := &Run{onEvent: func(e machine.Event) { evs = append(evs, e) }, progress: &bytes.Buffer{}}
	dir := t.TempDir()
	w, done := r.imageProgress("t", dir)
	_, _ = w.Write([]byte("I: chroot architecture amd64\nI: down"))
	_, _ = w.Write([]byte("loading\r 10%\r 20%\n\n"))
	done()
	var details []string
	for _, e := range evs {
		assert.Equal(t, EventProgress, e.Kind)
		assert.Equal(t, PhaseImage, e.Phase)
		assert.Equal(t, "t", e.Template)
		details = append(details, e.Detail)
	}
	assert.Equal(t, []string{"I: chroot architecture amd64", "I: downloading", "10%", "20%"}, details)
	b, err := os.ReadFile(filepath.Join(dir, "image-build.log"))
	require.NoError(t, err)
	assert.Equal(t, "I: chroot architecture amd64\nI: downloading\r 10%\r 20%\n\n", string(b))
	assert.Empty(t, r.progress.(*bytes.Buffer).String(), "nothing on the progress stream")

	// verbose: the output goes to the progress stream as before
	r.verbose = true
	w, done = r.imageProgress("t", dir)
	defer done()
	assert.Equal(t, r.progress, w)
}

// With several templates every check line carries its template, and each
// spec is an event as it starts and ends.
func TestRecordSpecPrefixAndEvents(t *testing.T) {
	var lines bytes.Buffer
	var evs []machine.Event
	r := &Run{reports: map[string]*report.Template{}, bootEnds: map[string]time.Time{}, lines: &lines,
		linePrefix: true, onEvent: func(e machine.Event) { evs = append(evs, e) }}
	start := time.Now()
	spec := types.SpecReport{LeafNodeType: types.NodeTypeIt, LeafNodeText: "docker: run", State: types.SpecStateFailed,
		StartTime: start, EndTime: start.Add(2 * time.Second), NumAttempts: 2, Failure: types.Failure{Message: "exit 1\nmore"}}
	r.SpecStarting("a", spec)
	r.RecordSpec("a", spec)
	assert.Equal(t, "[a]   FAIL       2.0s  docker: run\n[a]            exit 1\n", lines.String())
	require.Len(t, evs, 2)
	assert.Equal(t, machine.EventStart, evs[0].Kind)
	assert.Equal(t, machine.Event{Template: "a", Kind: machine.EventEnd, Phase: PhaseCheck, Step: "docker: run", Result: "fail",
		Elapsed: 2 * time.Second, Detail: "exit 1 ...", Time: evs[1].Time}, evs[1])
	assert.True(t, r.Reports()[0].IsFlaky(), "two attempts")
}

// A spec the label filter left out (skipped, no reason) is not part of
// the run: no line, no check in the report. Without the filter, or with
// a reason, a skipped spec is recorded.
func TestRecordSpecLeavesOutFilteredSpecs(t *testing.T) {
	var lines bytes.Buffer
	filter := "!suite:isolation || isolation:strict"
	r := &Run{reports: map[string]*report.Template{}, bootEnds: map[string]time.Time{}, lines: &lines,
		labelFilter: func() string { return filter }}
	iso := types.SpecReport{LeafNodeType: types.NodeTypeIt, LeafNodeText: "isolation: mounts/only-declared",
		State: types.SpecStateSkipped, LeafNodeLabels: []string{"suite:isolation"}}
	r.RecordSpec("a", iso)
	assert.Empty(t, lines.String(), "a filtered spec prints no line")
	assert.Empty(t, r.reports, "nor is it a check of the report")

	withReason := iso
	withReason.Failure = types.Failure{Message: "no saved guest"}
	r.RecordSpec("a", withReason)
	assert.Contains(t, lines.String(), "SKIPPED", "a spec skipped for a reason is recorded")

	lines.Reset()
	filter = ""
	r.RecordSpec("a", iso)
	assert.Contains(t, lines.String(), "SKIPPED", "without a filter a reasonless skip is recorded")
}
