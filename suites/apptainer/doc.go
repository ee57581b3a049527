// Package apptainer verifies the catalog's apptainer templates with the shared specs.
package apptainer
