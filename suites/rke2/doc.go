// Package rke2 verifies the catalog's rke2 templates with the shared specs.
package rke2
