// Package report holds the machine-readable verdict of one template's
// verification (report.json) and renders the per-check lines of the CLI.
package report
