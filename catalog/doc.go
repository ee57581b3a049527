// Package catalog loads, composes, defaults and validates guest templates.
//
// A template is a YAML document (apiVersion guestcatalog.dev/v1alpha1,
// kind Template) naming a distro image and, usually, a container engine;
// the shipped ones are named `<distro>-<release>[-<engine>]`, with short
// aliases (`debian-docker`), a user's any valid name. It is composed with
// `base:` from fragments (kind Fragment), named by their path:
// `images/debian-13`, `engines/docker`; [MergeRules] says how. The shipped
// templates are embedded from catalog/templates; [Load] with [WithPaths]
// layers a user's files and directories over them ([Catalog.Shadowed] says
// which shipped names they take). A template may declare `checks:`
// ([Check]), tests of the provisioned guest that the framework runs as
// specs, and its probes may wait with `eventually:`.
//
// The steps are explicit: Load reads every document strictly (unknown
// fields, duplicate keys, wrong types are errors) and checks each
// document's own fields, but composes nothing; [Catalog.Resolve] composes a
// template, fills in defaults ([Default]) and validates the whole. Every
// problem is reported at once, as [Problems], each with its position and
// field path:
//
//	catalog/templates/images/x.yaml:12:5: images[0].digest: must be set (or noDigest must say why)
//
// Warnings (an image without a digest, for a stated reason) do not fail a
// template; [Catalog.Check] and [Catalog.CheckAll] report them.
//
// The JSON Schema in schema/template.schema.json is generated from the Go
// types (`go generate ./catalog`); Validate reads the enums and patterns
// from the same struct tags, and a test validates every shipped document
// against the schema, so the two cannot drift apart.
package catalog
