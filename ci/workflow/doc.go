// Package workflow generates the nightly GitHub Actions workflow
// (.github/workflows/nightly.yml) from Go, so that the actions it pins, the
// packages it installs and the catalog commands it runs are kept in one place
// and tested: a test fails when the checked-in file drifts from Generate
// (regenerate with `go generate ./ci/...`), and another runs actionlint on it.
//
// The workflow never lists templates: its first job runs `catalog matrix`,
// which derives the matrix from the catalog (see package ci/matrix).
package workflow
