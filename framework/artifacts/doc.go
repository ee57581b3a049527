// Package artifacts fetches a template's vendor artifacts (catalog
// `artifacts:`) on the host through the verified download cache and puts
// them on a read-only drive the guest installs from.
package artifacts
