// Package k3s verifies the catalog's k3s templates with the shared specs.
package k3s
