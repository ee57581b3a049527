package summary

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/guestcatalog/guestcatalog/framework/report"
)

// ReportFile is the name `catalog verify --report-dir` gives a report.
const ReportFile = "report.json"

var errNotAReport = errors.New(`not a verification report: no "template"`)

// Entry is one loaded report, or the error that kept it from loading.
type Entry struct {
	Path   string
	Report *report.Template
	Err    error
}

// Load reads reports from paths: a file is read as a report; a directory is
// searched recursively for report.json files. Entries come back in path
// order; unreadable reports are entries with Err set, so a summary can
// still show them. An error is returned only for a path that does not exist.
func Load(paths ...string) ([]Entry, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("reading reports: %w", err)
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(f string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && d.Name() == ReportFile {
				files = append(files, f)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("searching %s for reports: %w", p, err)
		}
	}
	sort.Strings(files)
	out := make([]Entry, 0, len(files))
	for _, f := range files {
		r, err := report.ReadFile(f)
		if err == nil && r.Template == "" {
			err = fmt.Errorf("%s: %w", f, errNotAReport)
		}
		if err != nil {
			out = append(out, Entry{Path: f, Err: err})
			continue
		}
		if r.Arch == "" {
			r.Arch = archFromDir(f, r.Template)
		}
		out = append(out, Entry{Path: f, Report: r})
	}
	return out, nil
}

// archFromDir recovers the arch of a report that does not carry one from
// the directories the nightly workflow stores it in: <template>-<arch>/ (or
// report-<template>-<arch>/ once downloaded), possibly one level up since
// verify writes <report-dir>/<template>/report.json.
func archFromDir(file, template string) string {
	dir := filepath.Dir(file)
	for range 2 {
		base := filepath.Base(dir)
		for _, a := range []string{"x86_64", "aarch64"} {
			if base == template+"-"+a || strings.HasSuffix(base, "-"+template+"-"+a) {
				return a
			}
		}
		dir = filepath.Dir(dir)
	}
	return ""
}

// Counts tallies the results of the entries; broken reports count as failed.
type Counts struct{ Pass, Fail, Skip, Broken int }

// Failed reports whether anything failed or could not be read.
func (c Counts) Failed() bool { return c.Fail > 0 || c.Broken > 0 }

// Count tallies entries.
func Count(entries []Entry) Counts {
	var c Counts
	for _, e := range entries {
		switch {
		case e.Err != nil:
			c.Broken++
		case e.Report.Result == report.Pass:
			c.Pass++
		case e.Report.Result == report.Fail:
			c.Fail++
		default:
			c.Skip++
		}
	}
	return c
}

// Options shape the Markdown.
type Options struct {
	// Title is the heading; default "Guest template verification".
	Title string
	// MaxMessageLines caps each failed check's message (default 20).
	MaxMessageLines int
}

// Markdown writes the summary of the entries.
func Markdown(w io.Writer, entries []Entry, opts Options) error {
	if opts.Title == "" {
		opts.Title = "Guest template verification"
	}
	if opts.MaxMessageLines <= 0 {
		opts.MaxMessageLines = 20
	}
	ew := &errWriter{w: w}
	c := Count(entries)
	ew.printf("## %s\n\n", opts.Title)
	if len(entries) == 0 {
		ew.printf("No reports were found.\n")
		return ew.err
	}
	ew.printf("%s\n\n", totals(c))

	sorted := append([]Entry(nil), entries...)
	sort.SliceStable(sorted, func(i, j int) bool {
		ri, rj := rank(sorted[i]), rank(sorted[j])
		if ri != rj {
			return ri < rj
		}
		return sortKey(sorted[i]) < sortKey(sorted[j])
	})

	ew.printf("| | Template | Arch | Result | Accelerator | Image | Engine | Time | Checks | Reason |\n")
	ew.printf("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, e := range sorted {
		if e.Err != nil {
			msg := strings.TrimPrefix(e.Err.Error(), e.Path+": ")
			ew.printf("| ⚠️ | %s | | ERROR | | | | | | %s |\n", code(e.Path), cell(msg))
			continue
		}
		r := e.Report
		ew.printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			icon(r.Result), cell(r.Template), cell(r.Arch), r.Result.Verdict(), cell(r.Accelerator),
			imageCell(r.Image), cell(r.EngineVersion), duration(seconds(r)), checksCell(r.Checks), cell(r.Reason))
	}

	for _, e := range sorted {
		if e.Err != nil || e.Report.Result != report.Fail {
			continue
		}
		failures(ew, e.Report, opts.MaxMessageLines)
	}
	isolation(ew, sorted)
	return ew.err
}

func totals(c Counts) string {
	parts := []string{fmt.Sprintf("**%d passed**", c.Pass), fmt.Sprintf("**%d failed**", c.Fail), fmt.Sprintf("**%d skipped**", c.Skip)}
	if c.Broken > 0 {
		parts = append(parts, fmt.Sprintf("**%d unreadable**", c.Broken))
	}
	return strings.Join(parts, ", ")
}

func failures(ew *errWriter, r *report.Template, maxLines int) {
	name := r.Template
	if r.Arch != "" {
		name += " (" + r.Arch + ")"
	}
	var failed []report.Check
	for _, ch := range r.Checks {
		if ch.Result == report.Fail {
			failed = append(failed, ch)
		}
	}
	ew.printf("\n<details><summary>❌ %s: %d failed check(s)</summary>\n\n", html(name), len(failed))
	if r.Image.Source != "" {
		ew.printf("Image: %s", code(r.Image.Source))
		if r.Image.Digest != "" {
			ew.printf(" (%s)", code(r.Image.Digest))
		}
		ew.printf("  \n")
	}
	if r.QEMUVersion != "" || r.Accelerator != "" {
		ew.printf("QEMU %s, accelerator %s", cell(r.QEMUVersion), cell(r.Accelerator))
		if r.AccelReason != "" {
			ew.printf(" (%s)", cell(r.AccelReason))
		}
		ew.printf("  \n")
	}
	if r.Artifacts != "" {
		ew.printf("Artifacts: %s  \n", code(r.Artifacts))
	}
	if len(r.Phases) > 0 {
		ew.printf("\n| Phase | Time | Result |\n|---|---|---|\n")
		for _, p := range r.Phases {
			ew.printf("| %s | %s | %s |\n", cell(p.Name), duration(p.Seconds), string(p.Result))
		}
	}
	for _, ch := range failed {
		ew.printf("\n**%s** (%s)\n\n", html(ch.Name), duration(ch.Seconds))
		msg := strings.TrimRight(ch.Message, "\n")
		if msg == "" {
			msg = "(no message)"
		}
		lines := strings.Split(msg, "\n")
		if len(lines) > maxLines {
			lines = append(lines[:maxLines], fmt.Sprintf("… %d more lines in the JUnit report", len(lines)-maxLines))
		}
		ew.printf("```text\n%s\n```\n", strings.ReplaceAll(strings.Join(lines, "\n"), "```", "`‵`"))
	}
	ew.printf("\n</details>\n")
}

func rank(e Entry) int {
	switch {
	case e.Err != nil:
		return 0
	case e.Report.Result == report.Fail:
		return 1
	case e.Report.Result == report.Skip:
		return 2
	default:
		return 3
	}
}

func sortKey(e Entry) string {
	if e.Err != nil {
		return e.Path
	}
	return e.Report.Template + "\x00" + e.Report.Arch
}

func icon(r report.Result) string {
	switch r {
	case report.Pass:
		return "✅"
	case report.Fail:
		return "❌"
	default:
		return "⏭️"
	}
}

func seconds(r *report.Template) float64 {
	if r.Seconds > 0 {
		return r.Seconds
	}
	total := 0.0
	for _, p := range r.Phases {
		total += p.Seconds
	}
	for _, c := range r.Checks {
		total += c.Seconds
	}
	return total
}

func duration(s float64) string {
	if s <= 0 {
		return ""
	}
	d := time.Duration(s * float64(time.Second))
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

func imageCell(im report.Image) string {
	if im.Source == "" {
		return ""
	}
	name := im.Source
	if strings.Contains(name, "://") {
		name = path.Base(name)
	}
	s := code(name)
	if _, hex, ok := strings.Cut(im.Digest, ":"); ok && len(hex) >= 12 {
		s += " " + code(hex[:12])
	}
	return s
}

func checksCell(checks []report.Check) string {
	if len(checks) == 0 {
		return ""
	}
	var pass, fail, skip int
	for _, c := range checks {
		switch c.Result {
		case report.Pass:
			pass++
		case report.Fail:
			fail++
		default:
			skip++
		}
	}
	s := fmt.Sprintf("%d/%d passed", pass, len(checks))
	if fail > 0 {
		s += fmt.Sprintf(", %d failed", fail)
	}
	if skip > 0 {
		s += fmt.Sprintf(", %d skipped", skip)
	}
	return s
}

// cell makes text safe inside a Markdown table cell: one line, no pipes, no
// HTML, at most 200 characters.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 200 {
		s = string(r[:199]) + "…"
	}
	s = strings.ReplaceAll(s, "|", `\|`)
	return html(s)
}

// code is a one-line code span, safe in a table cell.
func code(s string) string {
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "`", "'")), " ")
	return "`" + strings.ReplaceAll(s, "|", `\|`) + "`"
}

func html(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
