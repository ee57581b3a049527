// Package base verifies the catalog's distro-only templates with the shared specs.
package base
