// Package catalog loads, composes, defaults and validates guest templates.
//
// A template is a YAML document (apiVersion guestcatalog.dev/v1alpha1) that
// names a distro image and a container engine. Templates are composed from
// fragments with `base:`; see README.md ("Template format") for the merge rules.
// Load does not validate: the steps are Load → Compose → Default → Validate.
package catalog
