package catalog

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSchemaUpToDate fails when the Go types (tags or comments) changed
// without regenerating the checked-in schema.
func TestSchemaUpToDate(t *testing.T) {
	want, err := GenerateSchema(".")
	require.NoError(t, err)
	got, err := os.ReadFile(SchemaFile)
	require.NoError(t, err, "run `go generate ./catalog` to write %s", SchemaFile)
	if !bytes.Equal(want, got) {
		t.Fatalf("%s is out of date with types.go: run `go generate ./catalog` and commit the result", SchemaFile)
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(SchemaFile)
	require.NoError(t, err)
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	require.NoError(t, c.AddResource(SchemaID, doc))
	s, err := c.Compile(SchemaID)
	require.NoError(t, err)
	return s
}

// schemaErrors validates each document of a YAML file against the schema
// and returns one error string per failing document (nil: all valid).
func schemaErrors(t *testing.T, s *jsonschema.Schema, name string, data []byte) []string {
	t.Helper()
	f, err := parser.ParseBytes(data, 0)
	require.NoError(t, err, name)
	var out []string
	for i, doc := range f.Docs {
		if doc.Body == nil {
			continue
		}
		var v any
		require.NoError(t, yaml.NodeToValue(doc.Body, &v), name)
		js, err := json.Marshal(v)
		require.NoError(t, err, name)
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
		require.NoError(t, err, name)
		if err := s.Validate(inst); err != nil {
			out = append(out, strings.Join([]string{name, "document", string(rune('0' + i)), err.Error()}, " "))
		}
	}
	return out
}

// TestSchemaAcceptsShippedTemplates checks the schema and the Go types
// against each other: every document the loader accepts (the shipped
// templates, the valid fixtures) validates against the schema.
func TestSchemaAcceptsShippedTemplates(t *testing.T) {
	s := compileSchema(t)
	n := 0
	err := fs.WalkDir(templatesFS, embeddedRoot, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !isYAML(p) {
			return err
		}
		data, err := templatesFS.ReadFile(p)
		require.NoError(t, err)
		assert.Empty(t, schemaErrors(t, s, p, data))
		n++
		return nil
	})
	require.NoError(t, err)
	assert.Positive(t, n)
	valid, _ := filepath.Glob("testdata/valid-*.yaml")
	for _, p := range valid {
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		assert.Empty(t, schemaErrors(t, s, p, data))
	}
}

// TestSchemaRejectsWhatGoRejects: the invalid fixtures whose problems a
// schema can express (types, unknown fields, enums, patterns, names) are
// rejected by it too; the others need the whole catalog (bases, aliases,
// composed templates) or cross-field rules, and only Validate sees them.
func TestSchemaRejectsWhatGoRejects(t *testing.T) {
	s := compileSchema(t)
	schemaSees := map[string]bool{
		"invalid-unknown-field.yaml":      true,
		"invalid-type.yaml":               true,
		"invalid-api-version.yaml":        true,
		"invalid-digest.yaml":             true,
		"invalid-param-name.yaml":         true,
		"invalid-size.yaml":               true,
		"invalid-data-step.yaml":          true,
		"invalid-location-and-build.yaml": true,
		"invalid-name.yaml":               true,
		"invalid-engine-coverage.yaml":    true,
		"invalid-checks.yaml":             true,
		"invalid-unpinned.yaml":           true,
		"invalid-duplicate-key.yaml":      false, // not even YAML: the parser rejects it
		"invalid-base-cycle.yaml":         false,
		"invalid-unknown-base.yaml":       false,
		"invalid-alias-collision.yaml":    false,
	}
	files, _ := filepath.Glob("testdata/invalid-*.yaml")
	for _, p := range files {
		sees, ok := schemaSees[filepath.Base(p)]
		require.True(t, ok, "%s: say whether the schema can see its problems", p)
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		if _, err := parser.ParseBytes(data, 0); err != nil {
			assert.False(t, sees, p)
			continue
		}
		assert.Equal(t, sees, len(schemaErrors(t, s, p, data)) > 0, p)
	}
}
