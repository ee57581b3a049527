package version

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/guestcatalog/guestcatalog/catalog"
)

// Info identifies a build of guestcatalog.
type Info struct {
	// Module is the main module's path.
	Module string `json:"module"`
	// Version is the module version ("(devel)" for a build from a checkout).
	Version string `json:"version"`
	// Revision is the VCS commit the binary was built from, "" if unknown
	// (go run and go test do not stamp it).
	Revision string `json:"revision,omitempty"`
	// Dirty says the work tree had uncommitted changes at build time.
	Dirty bool `json:"dirty,omitempty"`
	// Time is the commit time of Revision (RFC 3339).
	Time string `json:"time,omitempty"`
	// GoVersion is the toolchain the binary was built with.
	GoVersion string `json:"goVersion"`
	// CatalogDigest hashes the shipped templates (catalog.EmbeddedDigest).
	CatalogDigest string `json:"catalogDigest"`
}

// Get reads the running binary's build information.
func Get() Info {
	var i Info
	if bi, ok := debug.ReadBuildInfo(); ok {
		i = FromBuildInfo(bi)
	}
	if d, err := catalog.EmbeddedDigest(); err == nil {
		i.CatalogDigest = d
	}
	return i
}

// FromBuildInfo extracts the fields of Info that a build stamps.
func FromBuildInfo(bi *debug.BuildInfo) Info {
	i := Info{Module: bi.Main.Path, Version: bi.Main.Version, GoVersion: bi.GoVersion}
	if i.Version == "" {
		i.Version = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Revision = s.Value
		case "vcs.modified":
			i.Dirty = s.Value == "true"
		case "vcs.time":
			i.Time = s.Value
		}
	}
	return i
}

// String is the one-line form `catalog --version` prints.
func (i Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "guestcatalog %s", i.Version)
	if i.Revision != "" {
		rev := i.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		fmt.Fprintf(&b, " (%s", rev)
		if i.Dirty {
			b.WriteString(", dirty")
		}
		b.WriteString(")")
	}
	fmt.Fprintf(&b, ", %s, catalog %s", i.GoVersion, shortDigest(i.CatalogDigest))
	return b.String()
}

func shortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}
