package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
)

func TestShowByAlias(t *testing.T) {
	out, _, code := runCLI(t, "show", "ubuntu-k3s")
	require.Equal(t, 0, code)
	assert.True(t, strings.HasPrefix(out, "# template ubuntu-24.04-k3s, from catalog/templates/ubuntu-24.04-k3s.yaml\n# composed from: images/ubuntu-24.04, engines/k3s\n"), out)

	var tmpl catalog.Template
	require.NoError(t, yaml.UnmarshalWithOptions([]byte(out), &tmpl, yaml.Strict()), "show prints a template the loader reads back")
	assert.Equal(t, "ubuntu-24.04-k3s", tmpl.Name)
	assert.Equal(t, "k3s", tmpl.Engine.Name)
	assert.NotNil(t, tmpl.CPUs, "defaults are filled in")
	assert.Empty(t, tmpl.Base, "bases are composed in")

	again, _, _ := runCLI(t, "show", "ubuntu-24.04-k3s")
	assert.Equal(t, out, again, "stable output")
}

func TestShowFragment(t *testing.T) {
	out, _, code := runCLI(t, "show", "engines/docker")
	require.Equal(t, 0, code)
	assert.True(t, strings.HasPrefix(out, "# fragment engines/docker, from catalog/templates/engines/docker.yaml\n"), out)
	assert.Contains(t, out, "\nkind: Fragment\n")
}

func TestShowUnknown(t *testing.T) {
	_, errOut, code := runCLI(t, "show", "debian-dockr")
	assert.Equal(t, 2, code)
	assert.Equal(t, "catalog: unknown template \"debian-dockr\" (did you mean debian-docker?)\n", errOut)
}

func TestShowSet(t *testing.T) {
	c, err := catalog.Load(context.Background())
	require.NoError(t, err)
	var name, param string
	for _, tmpl := range c.Templates() {
		for k := range tmpl.Params {
			name, param = tmpl.Name, k
		}
	}
	if name == "" {
		t.Skip("no shipped template declares a param")
	}
	out, _, code := runCLI(t, "show", name, "--set", param+"=a=b,c")
	require.Equal(t, 0, code)
	assert.Contains(t, out, param+": a=b,c")

	_, errOut, code := runCLI(t, "show", name, "--set", "no_such_param=1")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "FAIL "+name+"\n  params: "+name+" declares no param \"no_such_param\" (declared: ")

	_, errOut, code = runCLI(t, "show", name, "--set", "novalue")
	assert.Equal(t, 2, code)
	assert.Equal(t, "catalog: --set \"novalue\": want NAME=VALUE\n", errOut)
}

// A script whose first line is indented needs an indentation indicator in
// a literal block; goccy/go-yaml's encoder wrote none, so show printed YAML
// no parser reads. show uses cloudinit's writer, which quotes such a string.
func TestShowIndentedScriptRoundTrips(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "indented.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`apiVersion: guestcatalog.dev/v1alpha1
kind: Template
name: indented
description: a script whose first line is indented
base: [images/debian-13, engines/containerd]
provision:
  - mode: system
    description: indented
    script: "  echo one\n  echo two\n"
`), 0o644))
	out, errOut, code := runCLI(t, "show", file)
	require.Equal(t, ExitOK, code, errOut)
	var tmpl catalog.Template
	require.NoError(t, yaml.UnmarshalWithOptions([]byte(out), &tmpl, yaml.Strict()), out)
	var found bool
	for _, s := range tmpl.Provision {
		if s.Description == "indented" {
			found = true
			assert.Equal(t, "  echo one\n  echo two\n", s.Script)
		}
	}
	assert.True(t, found, out)
}
