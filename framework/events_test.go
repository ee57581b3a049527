package framework

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework/machine"
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
