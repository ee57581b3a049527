package machine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type eventLog struct {
	mu  sync.Mutex
	evs []Event
}

func (l *eventLog) add(e Event) { l.mu.Lock(); l.evs = append(l.evs, e); l.mu.Unlock() }
func (l *eventLog) get() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.evs...)
}

func TestEngineEmitsPhaseStartAndEnd(t *testing.T) {
	var log eventLog
	e := newEngine(time.Now(), nil, nil)
	e.onEvent = log.add
	boom := errors.New("boom")
	err := runAll(context.Background(), e, okPhase("a"),
		phase{name: "b", run: func(context.Context) (string, error) { return "", boom }}, okPhase("c"))
	require.ErrorIs(t, err, boom)
	var got []string
	for _, ev := range log.get() {
		got = append(got, ev.Kind+" "+ev.Phase+" "+ev.Result)
		assert.False(t, ev.Time.IsZero() && ev.Kind == EventStart)
	}
	assert.Equal(t, []string{"start a ", "end a ok", "start b ", "end b failed"}, got)
}

func TestParseProvisionLine(t *testing.T) {
	for line, want := range map[string]*Event{
		"guestcatalog: 2026-12-07T03:00:00Z OK 01-install-docker (12s)":                   {Kind: EventStep, Phase: PhaseCloudInit, Step: "01-install-docker", Result: ResultOK, Elapsed: 12 * time.Second},
		"[   40.1] cloud-init[812]: guestcatalog: 2026-12-07T03:00:00Z START 02-x (user)": {Kind: EventStep, Phase: PhaseCloudInit, Step: "02-x", Detail: "user"},
		"guestcatalog: 2026-12-07T03:00:00Z FAILED 03-y (exit 2)":                         {Kind: EventStep, Phase: PhaseCloudInit, Step: "03-y", Result: ResultFailed, Detail: "exit 2"},
		"guestcatalog: 2026-12-07T03:00:00Z provisioning template debian-13":              nil,
		"[  142.0] cloud-init[424]: guestcatalog: 2026-12-07T04:01:56Z OK packages":       {Kind: EventStep, Phase: PhaseCloudInit, Step: "packages", Result: ResultOK},
		"guestcatalog: 2026-12-07T03:00:00Z OK a (1s) trailing":                           nil,
		"Started docker.service": nil,
	} {
		got, ok := parseProvisionLine(line)
		if want == nil {
			assert.False(t, ok, line)
			continue
		}
		assert.True(t, ok, line)
		assert.Equal(t, *want, got, line)
	}
}

// The guest's runner lines on the serial console become step events as
// they appear, before cloud-init has finished.
func TestConsoleStepsBecomeEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "serial.log")
	require.NoError(t, os.WriteFile(path, nil, 0o644))
	var log eventLog
	mon := newMonitor()
	mon.onStep = log.add
	stop := make(chan struct{})
	done := watchConsole(context.Background(), path, stop, mon, nil)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	defer f.Close()
	_, _ = f.WriteString("guestcatalog: 2026-12-07T03:00:00Z START 01-a (system)\n")
	_, _ = f.WriteString("guestcatalog: 2026-12-07T03:00:01Z OK 01-a (1s)\n")
	require.Eventually(t, func() bool { return len(log.get()) == 2 }, 5*time.Second, 20*time.Millisecond)
	close(stop)
	<-done
	assert.Equal(t, ResultOK, log.get()[1].Result)
	assert.Equal(t, "01-a", log.get()[1].Step)
}
