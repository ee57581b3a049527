// Package matrix builds the nightly CI matrix from the catalog: one entry per
// template × arch that the catalog marks for nightly testing, with the runner,
// the timeout, whether it verifies offline and the image cache key, optionally
// split into shards balanced by estimated minutes.
//
// The JSON it encodes is what GitHub Actions' `fromJSON` expects for
// `strategy.matrix`: {"include":[{...}, ...]}.
package matrix
