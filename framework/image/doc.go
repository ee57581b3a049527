// Package image picks and materializes the guest disk of a resolved template
// for one arch: the template's images for that arch are tried in order; a
// URL entry is fetched into the download cache (digest verified), a build
// entry is built locally from Debian's archive (framework/imagebuild).
//
// Online, a download that fails (network error, HTTP 404, …) falls back to
// the next entry, and the reason is kept in Artifact.Skipped and logged. A
// digest mismatch never falls back: the bytes were not what the catalog
// pinned, and that is reported as an error (ErrDigestMismatch). Offline,
// a URL entry with a digest is used when the cache holds its verified
// download (catalog pull elsewhere, then copy the cache); entries without a
// digest are skipped, build entries are built.
package image
