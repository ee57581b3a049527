// Package summary renders verification reports (report.json, written by
// `catalog verify --report-dir`) as Markdown for a CI run's summary page
// ($GITHUB_STEP_SUMMARY): one table row per template and arch, failures first,
// then the failed checks and phase timings of each failure.
package summary
