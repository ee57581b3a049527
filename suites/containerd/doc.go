// Package containerd verifies the catalog's containerd templates with the shared specs.
package containerd
