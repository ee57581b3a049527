// Package version tells what produced a run: the module version, the VCS
// revision and dirty flag the binary was built from, the Go version, and a
// digest of the embedded catalog.
package version
