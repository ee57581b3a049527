package framework

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"

	"github.com/guestcatalog/guestcatalog/framework/machine"
	"github.com/guestcatalog/guestcatalog/framework/report"
)

// genericSkip is Ginkgo's message for the specs after a skipping BeforeAll;
// the template's reason already says why.
const genericSkip = "Spec skipped because "

// recordBoot notes that a template's guest is ready, and prints a line
// with its phases.
func (r *Run) recordBoot(template string, rep *report.Template, took time.Duration) {
	r.mu.Lock()
	r.bootEnds[template] = time.Now()
	out := r.lines
	r.mu.Unlock()
	if out == nil {
		return
	}
	var phases []string
	for _, p := range rep.Phases {
		phases = append(phases, fmt.Sprintf("%s %.1fs", p.Name, p.Seconds))
	}
	fmt.Fprintf(out, "%s  %-7s %6.1fs  guest ready on %s (%s disk): %s\n", "READY", r.prefix(template), took.Seconds(), rep.Accelerator, rep.Provisioned, strings.Join(phases, ", "))
}

// notice prints a line the user must see at default verbosity (the CLI's
// check output) and to the spec's GinkgoWriter.
func (r *Run) notice(template, msg string) {
	r.mu.Lock()
	out := r.lines
	r.mu.Unlock()
	line := fmt.Sprintf("  %-7s %s: %s\n", "NOTICE", template, msg)
	if out != nil {
		fmt.Fprint(out, line)
	}
	fmt.Fprint(ginkgo.GinkgoWriter, line)
}

// reportFor returns the template's report, creating it.
func (r *Run) reportFor(name string) *report.Template {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep, ok := r.reports[name]
	if !ok {
		tool := r.tool
		rep = &report.Template{Template: name, Arch: r.cfg.Arch, Started: time.Now(), Tool: &tool}
		r.reports[name] = rep
	}
	return rep
}

// RecordSpec adds one finished spec to its template's report, prints its
// line when asked to, and rewrites <report-dir>/<template>/report.json.
func (run *Run) RecordSpec(template string, r types.SpecReport) {
	if r.LeafNodeType != types.NodeTypeIt || run.filteredOut(r) {
		return
	}
	// The first spec's run time includes the BeforeAll that booted the
	// guest; the boot has its own line and phases.
	start := r.StartTime
	run.mu.Lock()
	if be, ok := run.bootEnds[template]; ok && be.After(start) && be.Before(r.EndTime) {
		start = be
	}
	run.mu.Unlock()
	c := report.Check{Name: r.LeafNodeText}
	if !start.IsZero() && r.EndTime.After(start) {
		c.Seconds = r.EndTime.Sub(start).Seconds()
	}
	switch {
	case r.State == types.SpecStatePassed:
		c.Result = report.Pass
	case r.State == types.SpecStateSkipped || r.State == types.SpecStatePending:
		c.Result = report.Skip
		if c.Message = r.Failure.Message; strings.HasPrefix(c.Message, genericSkip) {
			c.Message = ""
		}
	default:
		c.Result = report.Fail
		c.Message = strings.TrimSpace(r.Failure.Message)
		if r.Failure.FailureNodeType != types.NodeTypeIt && r.Failure.FailureNodeType != types.NodeTypeInvalid {
			c.Message = fmt.Sprintf("in %s: %s", r.Failure.FailureNodeType, c.Message)
		}
		if r.State == types.SpecStateTimedout || r.State == types.SpecStateInterrupted {
			c.Message = r.State.String() + ": " + c.Message
		}
	}
	if r.NumAttempts > 1 {
		c.Attempts = r.NumAttempts
	}
	rep := run.reportFor(template)
	run.mu.Lock()
	rep.Checks = append(rep.Checks, c)
	rep.Seconds = time.Since(rep.Started).Seconds()
	for _, e := range r.ReportEntries {
		if e.Name == "engine-version" && rep.EngineVersion == "" {
			rep.EngineVersion = e.StringRepresentation()
		}
	}
	rep.Finish()
	out := run.lines
	run.mu.Unlock()
	run.emit(machine.Event{Template: template, Kind: machine.EventEnd, Phase: PhaseCheck, Step: c.Name,
		Result: string(c.Result), Elapsed: time.Duration(c.Seconds * float64(time.Second)), Detail: firstLine(c.Message)})
	if out != nil {
		fmt.Fprintln(out, run.prefix(template)+strings.ReplaceAll(report.CheckLine(c), "\n", "\n"+run.prefix(template)))
	}
	if dir := run.cfg.ReportDir; dir != "" {
		// The report is rewritten after every spec, so a killed run still
		// leaves what it had checked.
		if err := rep.WriteFile(filepath.Join(dir, template, "report.json")); err != nil {
			fmt.Fprintln(ginkgo.GinkgoWriter, "writing report:", err)
		}
	}
}

// filteredOut says whether the suite's label filter left the spec out:
// Ginkgo reports such a spec as skipped, without a reason, but it is not
// part of the run (a plain verify leaves out the isolation specs of
// templates that are not strict; they are not one SKIPPED line each).
// A spec skipped for a reason (Skip, a failed BeforeAll, an interrupt)
// is recorded.
func (run *Run) filteredOut(r types.SpecReport) bool {
	if r.State != types.SpecStateSkipped || r.Failure.Message != "" {
		return false
	}
	get := run.labelFilter
	if get == nil {
		get = ginkgo.GinkgoLabelFilter
	}
	f := get()
	if f == "" {
		return false
	}
	match, err := types.ParseLabelFilter(f)
	return err == nil && !match(r.Labels())
}

// Reports returns the reports of this run, sorted by template.
func (run *Run) Reports() []*report.Template {
	run.mu.Lock()
	defer run.mu.Unlock()
	out := make([]*report.Template, 0, len(run.reports))
	for _, r := range run.reports {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Template < out[j].Template })
	return out
}
