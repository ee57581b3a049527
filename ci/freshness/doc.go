// Package freshness keeps the catalog's pinned upstream images fresh.
//
// Check asks upstream, for every image URL of the catalog, whether it is
// still served and whether the checksum file the distro publishes beside it
// still lists the pinned digest. Update reads each distro's release metadata
// (Ubuntu's simplestreams, Debian's dated directories and SHA512SUMS, the
// CHECKSUM files of Fedora, Rocky Linux and AlmaLinux, Alpine's
// latest-releases.yaml and .sha512 files, Arch Linux's latest/ directory and
// .SHA256 files) and rewrites the pinned URL and digest in the image fragment
// files, touching nothing but those two scalars: comments, order and quoting
// stay byte for byte.
//
// Both talk HTTP through a Client whose mirrors map upstream URLs elsewhere
// (a local mirror, or a test server on 127.0.0.1); the URLs written into the
// templates are always the upstream ones.
package freshness
