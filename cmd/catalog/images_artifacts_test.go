package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// artifactUpstream serves a release on 127.0.0.1 laid out as --base-url
// expects (BASE/HOST/PATH): a binary, a sha256sum-style list and a
// single-digest .sha256 file.
func artifactUpstream(t *testing.T) (base string, tool, tarball []byte) {
	t.Helper()
	tool, tarball = []byte("#!/bin/sh\necho tool\n"), []byte("a tarball")
	files := map[string][]byte{
		"/releases.example.org/v1/tool":               tool,
		"/releases.example.org/v1/tool.tar.gz":        tarball,
		"/releases.example.org/v1/SHA256SUMS":         []byte(hexSHA(tool) + "  tool\n" + hexSHA(tarball) + " *tool.tar.gz\n"),
		"/releases.example.org/v1/tool.tar.gz.sha256": []byte(hexSHA(tarball) + "\n"),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, tool, tarball
}

const artifactFixture = `# an engine fragment with artifacts
apiVersion: guestcatalog.dev/v1alpha1
kind: Fragment
name: engines/tool
engine: {name: tool}
params:
  version: v1
artifacts:
  - name: tool
    sources:
      - arch: x86_64
        url: https://releases.example.org/{{.param.version}}/tool
        checksumFile:
          # the release's list
          url: https://releases.example.org/{{.param.version}}/SHA256SUMS
          name: tool

      - arch: aarch64
        url: "https://releases.example.org/{{.param.version}}/tool"
        digest: sha256:PINNED
    install: {path: /usr/local/bin/tool}
  - name: tool.tar.gz
    sources:
      - arch: x86_64
        url: https://releases.example.org/{{.param.version}}/tool.tar.gz
        checksumFile: {url: "https://releases.example.org/{{.param.version}}/tool.tar.gz.sha256"}   # one digest
provision:
  - mode: system
    script: tool
`

func writeArtifactFixture(t *testing.T, tool []byte, src string) (dir, file string) {
	dir = t.TempDir()
	file = filepath.Join(dir, "engines", "tool.yaml")
	require.NoError(t, os.MkdirAll(filepath.Dir(file), 0o755))
	src = strings.ReplaceAll(src, "sha256:PINNED", "sha256:"+hexSHA(tool))
	require.NoError(t, os.WriteFile(file, []byte(src), 0o644))
	return dir, file
}

func TestImagesUpdatePinsArtifacts(t *testing.T) {
	base, tool, tarball := artifactUpstream(t)
	dir, file := writeArtifactFixture(t, tool, artifactFixture)
	before, _ := os.ReadFile(file)

	out, errOut, code := runCLI(t, "--offline=false", "images", "update", "--dir", dir, "--base-url", base, "--dry-run")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "engines/tool.yaml:13  artifact tool x86_64\n  checksumFile -> digest sha256:"+hexSHA(tool))
	assert.Contains(t, out, "2 artifact sources would be pinned (dry run: nothing written), 0 skipped")
	after, _ := os.ReadFile(file)
	assert.Equal(t, string(before), string(after), "dry run")

	_, errOut, code = runCLI(t, "--offline=false", "images", "update", "--dir", dir, "--base-url", base)
	require.Equal(t, 0, code, errOut)
	after, _ = os.ReadFile(file)
	want := strings.Replace(string(before), `        checksumFile:
          # the release's list
          url: https://releases.example.org/{{.param.version}}/SHA256SUMS
          name: tool
`, "        digest: sha256:"+hexSHA(tool)+"\n", 1)
	want = strings.Replace(want, `checksumFile: {url: "https://releases.example.org/{{.param.version}}/tool.tar.gz.sha256"}   # one digest`,
		"digest: sha256:"+hexSHA(tarball)+"   # one digest", 1)
	assert.Equal(t, want, string(after), "only the checksumFile entries change, every other byte stays")

	// Nothing left to pin.
	out, errOut, code = runCLI(t, "--offline=false", "images", "update", "--dir", dir, "--base-url", base)
	require.Equal(t, 0, code, errOut)
	assert.NotContains(t, out, "artifact sources")
	again, _ := os.ReadFile(file)
	assert.Equal(t, string(after), string(again))
}

// TestImagesUpdateArtifactNotListed: the failing input of update — a
// checksum file that does not list the file is skipped, with the reason,
// and the YAML is left as it is.
func TestImagesUpdateArtifactNotListed(t *testing.T) {
	base, tool, _ := artifactUpstream(t)
	dir, file := writeArtifactFixture(t, tool, strings.Replace(artifactFixture, "          name: tool\n", "          name: tool-v2\n", 1))
	before, _ := os.ReadFile(file)
	out, errOut, code := runCLI(t, "--offline=false", "images", "update", "--dir", dir, "--base-url", base)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, `skipped artifact tool x86_64 (`+file+`:12): checksum file https://releases.example.org/v1/SHA256SUMS: no checksum for the file: "tool-v2" is not listed`)
	assert.Contains(t, out, "1 artifact sources pinned, 1 skipped")
	after, _ := os.ReadFile(file)
	assert.NotEqual(t, string(before), string(after), "the other one is pinned")
	assert.Contains(t, string(after), "name: tool-v2")
}

func TestImagesCheckArtifacts(t *testing.T) {
	base, tool, _ := artifactUpstream(t)
	dir, _ := writeArtifactFixture(t, tool, artifactFixture)
	out, errOut, code := runCLI(t, "--offline=false", "images", "check", "--dir", dir, "--base-url", base)
	require.Equal(t, 0, code, out+errOut)
	assert.Regexp(t, `engines/tool/tool\s+x86_64\s+ok \(200\)\s+checksum-file sha256:`+hexSHA(tool)[:12]+`… \(unpinned: images update pins it\)`, out)
	assert.Regexp(t, `engines/tool/tool\s+aarch64\s+ok \(200\)\s+pinned sha256:`+hexSHA(tool)[:12], out)

	out, errOut, code = runCLI(t, "--offline=false", "images", "check", "--dir", dir, "--base-url", base, "--markdown")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "| engines/tool/tool | x86_64 | ok (200) | checksum-file sha256:"+hexSHA(tool)[:12]+"… |")

	out, errOut, code = runCLI(t, "--offline=false", "images", "check", "--dir", dir, "--base-url", base, "-o", "json")
	require.Equal(t, 0, code, errOut)
	var doc struct {
		Artifacts []struct {
			Artifact, Arch, DigestState, Found string
		} `json:"artifacts"`
		Failed bool `json:"failed"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	require.Len(t, doc.Artifacts, 3)
	assert.Equal(t, "checksum-file", doc.Artifacts[0].DigestState)
	assert.Equal(t, "sha256:"+hexSHA(tool), doc.Artifacts[0].Found)
	assert.False(t, doc.Failed)
}

// TestImagesCheckArtifactsFail: the failing inputs of check — a dead URL
// and a checksum file that does not list the file exit 1 with a line each.
func TestImagesCheckArtifactsFail(t *testing.T) {
	base, tool, _ := artifactUpstream(t)
	src := strings.Replace(artifactFixture, "          name: tool\n", "          name: tool-v2\n", 1)
	src = strings.Replace(src, `url: "https://releases.example.org/{{.param.version}}/tool"`, `url: "https://releases.example.org/{{.param.version}}/gone"`, 1)
	dir, _ := writeArtifactFixture(t, tool, src)
	out, _, code := runCLI(t, "--offline=false", "images", "check", "--dir", dir, "--base-url", base)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, `artifact engines/tool/tool x86_64: checksum file https://releases.example.org/v1/SHA256SUMS: no checksum for the file: "tool-v2" is not listed`)
	assert.Contains(t, out, "artifact engines/tool/tool aarch64: dead")
}

// TestCatalogArtifactsAreTheShippedEngines: the shipped catalog's
// artifacts are found, expanded from their params.
func TestCatalogArtifactsAreTheShippedEngines(t *testing.T) {
	a := &app{streams: IOStreams{ErrOut: io.Discard}, cacheDir: t.TempDir()}
	srcs, err := a.catalogArtifacts(context.Background())
	require.NoError(t, err)
	var urls []string
	for _, s := range srcs {
		require.Empty(t, s.Err, s.URL)
		urls = append(urls, s.URL)
	}
	assert.Contains(t, urls, "https://github.com/k3s-io/k3s/releases/download/v1.35.4+k3s1/k3s")
	assert.Contains(t, urls, "https://github.com/k0sproject/k0s/releases/download/v1.35.1+k0s.0/k0s-v1.35.1+k0s.0-amd64")
	assert.Contains(t, urls, "https://github.com/rancher/rke2/releases/download/v1.35.4+rke2r1/rke2.linux-amd64.tar.gz")
	assert.Contains(t, urls, "https://dl.k8s.io/release/v1.35.0/bin/linux/amd64/kubeadm")
}
