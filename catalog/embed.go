package catalog

import "embed"

// templatesFS holds the shipped templates: fragments under images/ and
// engines/, templates at the top.
//
//go:embed templates
var templatesFS embed.FS

// embeddedRoot is the embedded directory, and embeddedDisplay the path shown
// for its files in messages (relative to the repository root).
const (
	embeddedRoot    = "templates"
	embeddedDisplay = "catalog/templates"
)
