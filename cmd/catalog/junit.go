package main

import (
	"encoding/xml"
	"fmt"
	"os"

	"github.com/onsi/ginkgo/v2/reporters"
)

// mergeJUnit combines the JUnit files of parallel verify processes into one
// (missing files are skipped: their template's report says why).
func mergeJUnit(files []string, dst string) error {
	var all reporters.JUnitTestSuites
	for _, f := range files {
		b, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return err
		}
		var s reporters.JUnitTestSuites
		if err := xml.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		all.Tests += s.Tests
		all.Disabled += s.Disabled
		all.Errors += s.Errors
		all.Failures += s.Failures
		all.Time += s.Time
		all.TestSuites = append(all.TestSuites, s.TestSuites...)
	}
	if len(all.TestSuites) == 0 {
		return errNoJUnit
	}
	return writeJUnit(all, dst)
}

// writeJUnit writes suites to dst atomically.
func writeJUnit(all reporters.JUnitTestSuites, dst string) error {
	b, err := xml.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, append([]byte(xml.Header), append(b, '\n')...), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
