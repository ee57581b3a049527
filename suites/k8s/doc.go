// Package k8s verifies the catalog's k8s templates with the shared specs.
package k8s
