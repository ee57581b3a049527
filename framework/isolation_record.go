package framework

import (
	"fmt"
	"path/filepath"

	"github.com/onsi/ginkgo/v2"

	"github.com/guestcatalog/guestcatalog/framework/report"
)

// RecordIsolation adds isolation results to the template's report (and
// rewrites report.json), replacing earlier results of the same property.
func (run *Run) RecordIsolation(template string, results ...report.IsolationResult) {
	rep := run.reportFor(template)
	run.mu.Lock()
	for _, r := range results {
		replaced := false
		for i := range rep.Isolation {
			if rep.Isolation[i].Property == r.Property {
				rep.Isolation[i], replaced = r, true
			}
		}
		if !replaced {
			rep.Isolation = append(rep.Isolation, r)
		}
	}
	run.mu.Unlock()
	if dir := run.cfg.ReportDir; dir != "" {
		if err := rep.WriteFile(filepath.Join(dir, template, "report.json")); err != nil {
			fmt.Fprintln(ginkgo.GinkgoWriter, "writing report:", err)
		}
	}
}
