package summary

import (
	"fmt"
	"strings"

	"github.com/guestcatalog/guestcatalog/framework/report"
)

// isolation writes each template's isolation profile (report.json
// isolation[]): a count line and one row per property, not-held first.
func isolation(ew *errWriter, entries []Entry) {
	for _, e := range entries {
		if e.Err != nil || len(e.Report.Isolation) == 0 {
			continue
		}
		r := e.Report
		counts := map[string]int{}
		for _, p := range r.Isolation {
			counts[p.Status]++
		}
		ew.printf("\n### Isolation profile: %s %s\n\n", code(r.Template), r.Arch)
		ew.printf("%d held, %d not held, %d skipped\n\n", counts["held"], counts["not-held"], counts["skipped"])
		ew.printf("| Property | Status | Evidence |\n|---|---|---|\n")
		for _, want := range []string{"not-held", "skipped", "held"} {
			for _, p := range r.Isolation {
				if p.Status == want {
					ew.printf("| %s | %s | %s |\n", code(p.Property), statusCell(p), cell(p.Detail))
				}
			}
		}
	}
}

func statusCell(p report.IsolationResult) string {
	if p.Status == "not-held" {
		return "❌ " + strings.ToUpper(p.Status)
	}
	return fmt.Sprint(p.Status)
}
