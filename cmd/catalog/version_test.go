package main

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"testing"

	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework/report"
	"github.com/guestcatalog/guestcatalog/framework/version"
)

func TestVersionFlagAndCommand(t *testing.T) {
	out, _, code := runCLI(t, "--version")
	require.Equal(t, ExitOK, code)
	assert.Regexp(t, `^guestcatalog \S+.*, go1\.\S+, catalog sha256:[0-9a-f]{12}\n$`, out)

	out, _, code = runCLI(t, "version")
	require.Equal(t, ExitOK, code)
	assert.Regexp(t, `(?m)^catalog:   sha256:[0-9a-f]{64}$`, out)

	out, _, code = runCLI(t, "version", "--output", "json")
	require.Equal(t, ExitOK, code)
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	assert.Equal(t, version.Get().CatalogDigest, got["catalogDigest"])
	assert.Contains(t, got, "goVersion")

	_, errOut, code := runCLI(t, "version", "-o", "xml")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, errOut, `--output "xml": want table, json or yaml`)
}

func TestReportCarriesTool(t *testing.T) {
	i := version.Get()
	b, err := json.Marshal(report.Template{Template: "x", Tool: &i})
	require.NoError(t, err)
	var got struct {
		Tool map[string]any `json:"tool"`
	}
	require.NoError(t, json.Unmarshal(b, &got))
	assert.Equal(t, i.CatalogDigest, got.Tool["catalogDigest"])
}

func TestJUnitProperties(t *testing.T) {
	path := filepath.Join(t.TempDir(), "junit.xml")
	in := reporters.JUnitTestSuites{TestSuites: []reporters.JUnitTestSuite{{Name: "a",
		Properties: reporters.JUnitProperties{Properties: []reporters.JUnitProperty{{Name: "SuiteSucceeded", Value: "true"}, {Name: "guestcatalog.version", Value: "old"}}}}}}
	require.NoError(t, writeJUnit(in, path))
	i := version.Info{Version: "v1.2.3", Module: "m", GoVersion: "go1.26", CatalogDigest: "sha256:ab", Revision: "abc", Dirty: true}
	require.NoError(t, addJUnitProperties(path, junitProperties(i)))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var s reporters.JUnitTestSuites
	require.NoError(t, xml.Unmarshal(b, &s))
	props := map[string]string{}
	for _, p := range s.TestSuites[0].Properties.Properties {
		_, dup := props[p.Name]
		assert.False(t, dup, "property %s twice", p.Name)
		props[p.Name] = p.Value
	}
	assert.Equal(t, map[string]string{"SuiteSucceeded": "true", "guestcatalog.version": "v1.2.3", "guestcatalog.module": "m",
		"guestcatalog.goVersion": "go1.26", "guestcatalog.catalogDigest": "sha256:ab", "guestcatalog.revision": "abc", "guestcatalog.dirty": "true"}, props)
}
