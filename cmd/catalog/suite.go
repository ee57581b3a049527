package main

import (
	"fmt"
	"strings"

	"github.com/guestcatalog/guestcatalog/suites/specs"
)

// applySuite turns --suite into a label filter (anded with --label-filter).
// Without --suite, and unless --label-filter names the isolation labels,
// the isolation specs of templates that do not declare isolation: strict
// are left out (not listed as skipped, one line each, in every verify).
func applySuite(o *verifyOptions) error {
	switch o.suite {
	case "":
		if strings.Contains(o.labelFilter, specs.LabelIsolation) || strings.Contains(o.labelFilter, specs.LabelIsolationStrict) {
			return nil
		}
		plain := "!" + specs.LabelIsolation + " || " + specs.LabelIsolationStrict
		if o.labelFilter == "" {
			o.labelFilter = plain
		} else {
			o.labelFilter = "(" + o.labelFilter + ") && (" + plain + ")"
		}
		return nil
	case "isolation":
		if o.labelFilter == "" {
			o.labelFilter = specs.LabelIsolation
		} else {
			o.labelFilter = "(" + o.labelFilter + ") && " + specs.LabelIsolation
		}
		return nil
	}
	return fmt.Errorf("--suite: %q is not a suite (want isolation)", o.suite)
}
