// Package podman verifies the catalog's podman templates with the shared specs.
package podman
