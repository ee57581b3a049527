package catalog

import (
	"encoding/json"
	"fmt"

	"github.com/invopop/jsonschema"

	"github.com/guestcatalog/guestcatalog/framework/exec"
)

//go:generate go run ./internal/genschema

// SchemaID is the $id of the JSON Schema of template documents.
const SchemaID = "https://guestcatalog.dev/schema/v1alpha1/template.schema.json"

// SchemaFile is where `go generate` writes the schema, relative to the
// catalog package; editors use it through a first line such as
// `# yaml-language-server: $schema=../schema/template.schema.json`.
const SchemaFile = "schema/template.schema.json"

const modulePath = "github.com/guestcatalog/guestcatalog/catalog"

// GenerateSchema returns the JSON Schema of a template document, reflected
// from the Go types: YAML names as properties, no additional properties,
// the enums and patterns of the jsonschema tags (the same ones Validate
// reads). srcDir, when not empty, is the catalog package's source
// directory, relative to the working directory ("." for go generate): the
// Go comments of types.go become the descriptions editors show.
func GenerateSchema(srcDir string) ([]byte, error) {
	r := &jsonschema.Reflector{FieldNameTag: "yaml", ExpandedStruct: true}
	if srcDir != "" {
		if err := r.AddGoComments(modulePath, srcDir); err != nil {
			return nil, fmt.Errorf("reading Go comments from %s: %w", srcDir, err)
		}
	}
	s := r.Reflect(&Template{})
	s.ID = SchemaID
	s.Title = "guestcatalog template or fragment (" + APIVersion + ")"

	// What tags cannot say: names of env and params, and the values a
	// `when` filter can take (the enums of the fields it filters on).
	names := &jsonschema.Schema{Pattern: exec.EnvNamePattern}
	for _, p := range []string{"env", "params"} {
		if prop, ok := s.Properties.Get(p); ok {
			prop.PropertyNames = names
		}
	}
	if when, ok := s.Definitions["When"]; ok {
		for field, enum := range map[string][]string{"families": familyNames, "distros": distroNames, "arches": archNames} {
			if prop, ok := when.Properties.Get(field); ok && prop.Items != nil {
				prop.Items.Enum = nil
				for _, v := range enum {
					prop.Items.Enum = append(prop.Items.Enum, v)
				}
			}
		}
	}
	// An expectation on output sets exactly one of equals, contains, regex.
	if e, ok := s.Definitions["Expect"]; ok {
		one := uint64(1)
		e.MinProperties, e.MaxProperties = &one, &one
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the schema: %w", err)
	}
	return append(b, '\n'), nil
}
