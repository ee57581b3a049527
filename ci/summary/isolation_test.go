package summary

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework/report"
)

func TestIsolationProfileInSummary(t *testing.T) {
	r := &report.Template{Template: "debian-13", Arch: "x86_64", Result: report.Pass, Isolation: []report.IsolationResult{
		{Property: "network/no-guest-dns", Status: "held", Detail: "cannot resolve"},
		{Property: "network/host-loopback-unreachable", Status: "not-held", Detail: "10.0.2.2 open"},
	}}
	var buf bytes.Buffer
	require.NoError(t, Markdown(&buf, []Entry{{Path: "r.json", Report: r}}, Options{}))
	out := buf.String()
	assert.Contains(t, out, "### Isolation profile: `debian-13` x86_64")
	assert.Contains(t, out, "1 held, 1 not held, 0 skipped")
	assert.Contains(t, out, "| `network/host-loopback-unreachable` | ❌ NOT-HELD | 10.0.2.2 open |\n| `network/no-guest-dns` | held |")
}
