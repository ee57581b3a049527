// Package custom runs the templates whose engine has no suite of its own (a
// user's engine, declared in a template of GUESTCATALOG_CATALOG): the base
// specs and the template's declared checks.
package custom
