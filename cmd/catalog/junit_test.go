package main

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"testing"

	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMergeJUnit(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, s reporters.JUnitTestSuites) string {
		p := filepath.Join(dir, name)
		b, err := xml.Marshal(s)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(p, b, 0o644))
		return p
	}
	a := write("a.xml", reporters.JUnitTestSuites{Tests: 3, Failures: 1, Time: 10,
		TestSuites: []reporters.JUnitTestSuite{{Name: "debian-13-docker", Tests: 3, Failures: 1}}})
	b := write("b.xml", reporters.JUnitTestSuites{Tests: 2, Disabled: 2, Time: 1,
		TestSuites: []reporters.JUnitTestSuite{{Name: "ubuntu-24.04-k3s", Tests: 2, Disabled: 2}}})
	dst := filepath.Join(dir, "junit.xml")
	// A child that left no file (it crashed) is skipped, not an error.
	require.NoError(t, mergeJUnit([]string{a, filepath.Join(dir, "missing.xml"), b}, dst))
	raw, err := os.ReadFile(dst)
	require.NoError(t, err)
	var got reporters.JUnitTestSuites
	require.NoError(t, xml.Unmarshal(raw, &got))
	assert.Equal(t, 5, got.Tests)
	assert.Equal(t, 1, got.Failures)
	assert.Equal(t, 2, got.Disabled)
	assert.InDelta(t, 11.0, got.Time, 1e-9)
	require.Len(t, got.TestSuites, 2)
	assert.Equal(t, "ubuntu-24.04-k3s", got.TestSuites[1].Name)

	assert.ErrorIs(t, mergeJUnit([]string{filepath.Join(dir, "none.xml")}, dst), errNoJUnit)
}
