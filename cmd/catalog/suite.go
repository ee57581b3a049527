package main

import (
	"fmt"

	"github.com/guestcatalog/guestcatalog/suites/specs"
)

// applySuite turns --suite into a label filter (anded with --label-filter).
func applySuite(o *verifyOptions) error {
	switch o.suite {
	case "":
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
