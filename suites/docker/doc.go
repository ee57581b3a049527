// Package docker verifies the catalog's docker templates with the shared specs.
package docker
