package framework

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"

	"github.com/guestcatalog/guestcatalog/framework/report"
)

var (
	reportsMu sync.Mutex
	reports   = map[string]*report.Template{}
	checkOut  io.Writer
)

// PrintChecks makes RecordSpec print one line per check to w (the CLI).
func PrintChecks(w io.Writer) {
	reportsMu.Lock()
	defer reportsMu.Unlock()
	checkOut = w
}

// reportFor returns the template's report, creating it.
func reportFor(name string) *report.Template {
	reportsMu.Lock()
	defer reportsMu.Unlock()
	r, ok := reports[name]
	if !ok {
		r = &report.Template{Template: name, Arch: current().Arch, Started: runStart}
		reports[name] = r
	}
	return r
}

// RecordSpec adds one finished spec to its template's report, prints its
// line when asked to, and rewrites <report-dir>/<template>/report.json.
func RecordSpec(template string, r types.SpecReport) {
	if r.LeafNodeType != types.NodeTypeIt {
		return
	}
	c := report.Check{Name: r.LeafNodeText, Seconds: r.RunTime.Seconds()}
	switch {
	case r.State == types.SpecStatePassed:
		c.Result = report.Pass
	case r.State == types.SpecStateSkipped || r.State == types.SpecStatePending:
		c.Result = report.Skip
		c.Message = r.Failure.Message
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
	rep := reportFor(template)
	reportsMu.Lock()
	rep.Checks = append(rep.Checks, c)
	rep.Seconds = r.EndTime.Sub(rep.Started).Seconds()
	for _, e := range r.ReportEntries {
		if e.Name == "engine-version" && rep.EngineVersion == "" {
			rep.EngineVersion = e.StringRepresentation()
		}
	}
	rep.Finish()
	out := checkOut
	reportsMu.Unlock()
	if out != nil {
		fmt.Fprintln(out, report.CheckLine(c))
	}
	if dir := current().ReportDir; dir != "" {
		// The report is rewritten after every spec, so a killed run still
		// leaves what it had checked.
		if err := rep.WriteFile(filepath.Join(dir, template, "report.json")); err != nil {
			fmt.Fprintln(ginkgo.GinkgoWriter, "writing report:", err)
		}
	}
}

// Reports returns the reports of this run, sorted by template.
func Reports() []*report.Template {
	reportsMu.Lock()
	defer reportsMu.Unlock()
	out := make([]*report.Template, 0, len(reports))
	for _, r := range reports {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Template < out[j].Template })
	return out
}
