// Package config is the one place that reads the environment: it turns the
// GUESTCATALOG_* variables (and ARTIFACTS) into a validated Config that the
// CLI and the suites hand to framework.NewRun. Every other package takes
// options and reads no environment (see framework/envcheck_test.go).
package config
