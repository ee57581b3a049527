// Package ci is the nightly CI of the catalog, generated from the catalog
// rather than written by hand.
//
// Its parts live in sub-packages:
//   - ci/matrix builds the GitHub Actions matrix (template × arch, runner,
//     timeout, cache key, shards) from the resolved templates;
//   - ci/workflow generates .github/workflows/nightly.yml (run
//     `go generate ./ci/...` after changing it; a test fails on drift);
//   - ci/summary renders report.json files as a Markdown table for
//     $GITHUB_STEP_SUMMARY;
//   - ci/freshness checks that pinned upstream images are still served with
//     the pinned digest, and rewrites the image fragments to newer releases.
package ci

//go:generate go run ./workflow/internal/genworkflow -o ../.github/workflows/nightly.yml
