package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework/isolation"
)

// A strict template whose property does not hold exits 1; any other
// template's profile is only reported (exit 0). Every format prints one
// result per property; the guest's evidence is escaped.
func TestReportIsolation(t *testing.T) {
	ent := func(strict bool, st isolation.Status) isolationEntry {
		e := isolationEntry{Instance: "box", Template: "debian-13-sandbox", Strict: strict, Results: []isolation.Result{
			{Property: isolation.PropResourcesDisk, Status: st, Detail: "declared 10.00 GiB\x1b[2J\nPASS forged", Seconds: 61.2},
			{Property: isolation.PropSnapshotUnique, Status: isolation.Skipped, Detail: "the template has mounts"},
		}}
		if st == isolation.NotHeld {
			e.NotHeld = []string{isolation.PropResourcesDisk}
		}
		return e
	}
	var b bytes.Buffer
	err := reportIsolation(&b, outputTable, ent(true, isolation.NotHeld))
	assert.Equal(t, exitError{ExitFailed}, err, "strict and not held: exit 1")
	assert.Contains(t, b.String(), "not-held  resources/disk-fills-at-declared-size")
	assert.Contains(t, b.String(), "skipped   snapshot/resumes-differ-in-random")
	assert.Contains(t, b.String(), "FAIL: 1 properties do not hold")
	assert.NotContains(t, b.String(), "\x1b", "the guest's evidence is escaped")
	assert.NotContains(t, b.String(), "\nPASS", "one line per property")

	b.Reset()
	assert.NoError(t, reportIsolation(&b, outputTable, ent(false, isolation.NotHeld)), "not strict: reported only")
	assert.Contains(t, b.String(), "reported only")

	b.Reset()
	assert.NoError(t, reportIsolation(&b, outputTable, ent(true, isolation.Held)))
	assert.Contains(t, b.String(), "every checked property holds")

	b.Reset()
	err = reportIsolation(&b, outputJSON, ent(true, isolation.NotHeld))
	assert.Equal(t, exitError{ExitFailed}, err)
	var got isolationEntry
	require.NoError(t, json.Unmarshal(b.Bytes(), &got))
	assert.Equal(t, []string{isolation.PropResourcesDisk}, got.NotHeld)
	assert.Len(t, got.Results, 2)

	b.Reset()
	assert.NoError(t, reportIsolation(&b, outputYAML, ent(false, isolation.Held)))
	assert.Contains(t, b.String(), "notHeld: []")
}

func TestIsolationCmdRejectsUnknownSkip(t *testing.T) {
	_, errOut, code := runCLI(t, "isolation", "box", "--skip", "disk")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, errOut, "not a property")
}
