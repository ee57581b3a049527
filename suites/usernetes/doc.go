// Package usernetes verifies the catalog's usernetes templates with the shared specs.
package usernetes
