// Package download fetches guest images into a local, verified cache.
//
// A Cache keeps one entry per URL under <cache dir>/downloads/<key>/, where
// key is the first 32 hex digits of sha256(URL). Each entry holds:
//
//	lock                 flock(2) lock: one download per URL across processes
//	data                 the file as published, its digest verified
//	data.decompressed    the decompressed image, for .xz/.gz/.zst/.bz2 URLs
//	meta.json            URL, digest, size and mtime of data; its mtime is the last use
//	data.part            an interrupted download, resumed by the next Fetch
//	data.part.json       validators (ETag, Last-Modified) of data.part for If-Range
//	verdict.json         the last transfer's digest mismatch (never any of its bytes)
//
// Fetch verifies the digest while the bytes stream (the hash of each chunk
// runs in its own goroutine, overlapping grab's write of the same buffer;
// nothing is read twice or copied), writes to data.part, fsyncs and
// renames: a file that failed verification never becomes visible. The
// kernel is asked to write data.part back while it grows, so the fsync
// before the rename is short. A cache hit compares the size and mtime recorded at
// commit time and does not re-hash (WithReverify forces a full re-hash); a
// size or mtime change triggers a re-hash and, if that fails, a re-fetch.
//
// Transfers use grab (github.com/cavaliergopher/grab/v3) for resume and
// progress; its traps (a server that advertises ranges but answers 200 is
// appended to the partial file; a right-sized partial is accepted unread)
// are closed here: the response to a Range request must be a 206 starting
// at the partial size, and a digest mismatch after a resume restarts the
// download from zero once. Transient failures are retried with exponential
// backoff (cenkalti/backoff/v5); 4xx other than 408/429, digest mismatches,
// a full disk (ENOSPC, EDQUOT: the partial file is removed at once) and
// cancelled contexts are not.
//
// One transfer, one verdict: fetches of a URL that waited on the entry
// lock while a transfer failed its digest return that same mismatch
// (verdict.json, recorded after they began) instead of downloading again;
// a fetch that starts later asks the server anew.
//
// Mirrors (WithMirrors, Rewrite) replace a URL prefix before downloading;
// the cache key stays the original URL, so an image fetched from a mirror
// is a hit for its upstream URL. Callers build them from --mirror flags
// (ParseMirrors) and $GUESTCATALOG_MIRRORS (MirrorsFromEnv). The cache
// directory is WithCacheDir, else $GUESTCATALOG_CACHE, else
// $XDG_CACHE_HOME/guestcatalog (DefaultCacheDir).
//
// The package is silent unless given WithProgress or WithLogger.
package download
