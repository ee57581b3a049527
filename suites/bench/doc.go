// Package bench measures `catalog verify` end to end: a warm verify from a
// provisioned disk, the marginal cost of a spec on a booted guest, and
// (GUESTCATALOG_BENCH_COLD=1) the offline templates cold. Figures are
// printed with b.ReportMetric; `make bench` runs them. Targets are not
// asserted: timings depend on the machine's load.
package bench
