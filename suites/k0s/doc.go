// Package k0s verifies the catalog's k0s templates with the shared specs.
package k0s
