package summary

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework/report"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMarkdownGolden(t *testing.T) {
	entries, err := Load("testdata/reports")
	require.NoError(t, err)
	require.Len(t, entries, 5)

	var buf bytes.Buffer
	require.NoError(t, Markdown(&buf, entries, Options{MaxMessageLines: 3}))
	path := filepath.Join("testdata", "summary.golden.md")
	if *update {
		require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./ci/summary -update")
	assert.Equal(t, string(want), buf.String(), "run go test ./ci/summary -update and review the diff")
}

func TestLoad(t *testing.T) {
	entries, err := Load("testdata/reports")
	require.NoError(t, err)
	byDir := map[string]Entry{}
	for _, e := range entries {
		byDir[filepath.Base(filepath.Dir(e.Path))] = e
	}
	pass := byDir["debian-13-docker-x86_64"]
	require.NoError(t, pass.Err)
	assert.Equal(t, "x86_64", pass.Report.Arch, "arch inferred from <template>-<arch>/")
	assert.Equal(t, "aarch64", byDir["debian-13-docker-aarch64"].Report.Arch, "arch from the report")

	broken := byDir["broken-x86_64"]
	require.Error(t, broken.Err)
	assert.EqualError(t, broken.Err, "testdata/reports/broken-x86_64/report.json: unexpected end of JSON input")

	assert.Equal(t, Counts{Pass: 2, Fail: 1, Skip: 1, Broken: 1}, Count(entries))
	assert.True(t, Count(entries).Failed())
	assert.False(t, Counts{Pass: 3, Skip: 1}.Failed())

	// Files and directories mix; a missing path is an error.
	one, err := Load("testdata/reports/debian-13-docker-x86_64/report.json")
	require.NoError(t, err)
	require.Len(t, one, 1)
	_, err = Load("testdata/nope")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "reading reports: stat testdata/nope")
}

func TestArchFromDir(t *testing.T) {
	assert.Equal(t, "x86_64", archFromDir("reports/debian-13-docker-x86_64/report.json", "debian-13-docker"))
	assert.Equal(t, "aarch64", archFromDir("reports/debian-13-docker-aarch64/debian-13-docker/report.json", "debian-13-docker"))
	assert.Equal(t, "aarch64", archFromDir("all/report-debian-13-docker-aarch64/debian-13-docker/report.json", "debian-13-docker"))
	assert.Equal(t, "", archFromDir("reports/debian-13-docker/report.json", "debian-13-docker"))
	assert.Equal(t, "", archFromDir("reports/debian-13-podman-x86_64/report.json", "debian-13-docker"), "another template's directory")
}

func TestLoadRejectsJSONThatIsNotAReport(t *testing.T) {
	p := filepath.Join(t.TempDir(), "report.json")
	require.NoError(t, os.WriteFile(p, []byte(`{"include":[]}`), 0o644))
	entries, err := Load(p)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.ErrorContains(t, entries[0].Err, `not a verification report: no "template"`)
}

func TestMarkdownNoReports(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, Markdown(&buf, nil, Options{Title: "Nightly"}))
	assert.Equal(t, "## Nightly\n\nNo reports were found.\n", buf.String())
}

func TestMarkdownTableStaysATable(t *testing.T) {
	r := &report.Template{Template: "t", Arch: "x86_64", Result: report.Fail,
		Reason: "a | b\nc <script>", Image: report.Image{Source: "https://x/a|b.qcow2"},
		Checks: []report.Check{{Name: "c", Result: report.Fail, Message: "m"}}}
	var buf bytes.Buffer
	require.NoError(t, Markdown(&buf, []Entry{{Path: "x", Report: r}}, Options{}))
	var row string
	for _, l := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(l, "| ❌ |") {
			row = l
		}
	}
	require.NotEmpty(t, row, buf.String())
	// 11 unescaped pipes: 10 columns.
	assert.Equal(t, 11, strings.Count(row, "|")-strings.Count(row, `\|`), row)
	assert.Contains(t, row, `a \| b c &lt;script&gt;`)
	assert.Contains(t, row, "`a\\|b.qcow2`")
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

func TestMarkdownReportsWriteErrors(t *testing.T) {
	entries, err := Load("testdata/reports")
	require.NoError(t, err)
	assert.ErrorIs(t, Markdown(failingWriter{}, entries, Options{}), os.ErrClosed)
}
