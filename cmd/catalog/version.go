package main

import (
	"encoding/xml"
	"fmt"
	"os"

	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/spf13/cobra"

	"github.com/guestcatalog/guestcatalog/framework/version"
)

func newVersionCmd(a *app) *cobra.Command {
	var o outputOptions
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the build of catalog: module version, VCS revision, Go version, catalog digest",
		Long: `version prints what this binary was built from: the module version ("(devel)"
for a build from a checkout), the VCS revision and whether the work tree was
dirty (go build and go install stamp them; go run does not), the Go version,
and a digest of the built-in catalog. verify records the same in every
report.json ("tool") and as properties of junit.xml, so a report can be tied
to what produced it. 'catalog --version' prints the one-line form.`,
		Example: `  catalog version
  catalog version -o json | jq -r .catalogDigest`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := o.get()
			if err != nil {
				return err
			}
			i := version.Get()
			if f != outputTable {
				return writeData(cmd.OutOrStdout(), f, i)
			}
			w := cmd.OutOrStdout()
			rev := i.Revision
			if rev == "" {
				rev = "(not stamped: go run or go test)"
			}
			fmt.Fprintf(w, "version:   %s\nmodule:    %s\nrevision:  %s\ndirty:     %t\n", i.Version, i.Module, rev, i.Dirty)
			if i.Time != "" {
				fmt.Fprintf(w, "time:      %s\n", i.Time)
			}
			fmt.Fprintf(w, "go:        %s\ncatalog:   %s\n", i.GoVersion, i.CatalogDigest)
			return nil
		},
	}
	addOutputFlag(cmd, &o, false)
	return cmd
}

// junitProperties are the build facts verify adds to every test suite of
// junit.xml.
func junitProperties(i version.Info) []reporters.JUnitProperty {
	p := []reporters.JUnitProperty{
		{Name: "guestcatalog.version", Value: i.Version},
		{Name: "guestcatalog.module", Value: i.Module},
		{Name: "guestcatalog.goVersion", Value: i.GoVersion},
		{Name: "guestcatalog.catalogDigest", Value: i.CatalogDigest},
	}
	if i.Revision != "" {
		p = append(p, reporters.JUnitProperty{Name: "guestcatalog.revision", Value: i.Revision},
			reporters.JUnitProperty{Name: "guestcatalog.dirty", Value: fmt.Sprint(i.Dirty)})
	}
	return p
}

// addJUnitProperties rewrites the JUnit file at path with props on every
// suite (replacing properties of the same name).
func addJUnitProperties(path string, props []reporters.JUnitProperty) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var s reporters.JUnitTestSuites
	if err := xml.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for i := range s.TestSuites {
		have := s.TestSuites[i].Properties.Properties
		kept := have[:0]
		for _, p := range have {
			if !hasProperty(props, p.Name) {
				kept = append(kept, p)
			}
		}
		s.TestSuites[i].Properties.Properties = append(kept, props...)
	}
	return writeJUnit(s, path)
}

func hasProperty(props []reporters.JUnitProperty, name string) bool {
	for _, p := range props {
		if p.Name == name {
			return true
		}
	}
	return false
}
