package catalog

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// artifactTemplate is a valid template with artifacts built in Go; tests
// break one field each.
func artifactTemplate() *Template {
	t := &Template{APIVersion: APIVersion, Kind: KindTemplate, Name: "debian-13", Source: "made in Go",
		Distro: &Distro{Name: "debian", Release: "13", Family: FamilyDebian},
		Images: []Image{{Arch: ArchX8664, Build: &BuildRecipe{Suite: "trixie"}}},
		Params: map[string]string{"version": "v1.2.3+k3s1"},
		Artifacts: []Artifact{
			{Name: "tool", Sources: []ArtifactSource{
				{Arch: ArchX8664, URL: "https://example.org/{{.param.version}}/tool", Digest: testDigest},
				{Arch: ArchAarch64, URL: "https://example.org/{{ .param.version }}/tool-arm64",
					ChecksumFile: &ChecksumFile{URL: "https://example.org/{{.param.version}}/sha256sum-arm64.txt", Name: "tool-arm64"}},
			}, Install: &ArtifactInstall{Path: "/usr/local/bin/tool"}},
			{Name: "bundle.tar.gz", Sources: []ArtifactSource{
				{Arch: ArchX8664, URL: "https://example.org/bundle.tar.gz", ChecksumFile: &ChecksumFile{URL: "https://example.org/bundle.tar.gz.sha256"}},
			}},
		},
	}
	Default(t)
	return t
}

func TestArtifactsValid(t *testing.T) {
	tmpl := artifactTemplate()
	require.NoError(t, validateGo(tmpl))
	assert.Empty(t, checkArtifactParams(tmpl, func(string) Position { return Position{File: "x"} }, nil))
}

// TestArtifactsInvalid pins the message of each rule on the input it exists
// to refuse.
func TestArtifactsInvalid(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*Template)
		want   string
	}{
		{"no name", func(t *Template) { t.Artifacts[0].Name = "" }, "artifacts[0].name: must be set"},
		{"name with slash", func(t *Template) { t.Artifacts[0].Name = "bin/tool" },
			`artifacts[0].name: must be a file name (^[a-z0-9][a-z0-9._+-]*$), not "bin/tool"`},
		{"long name", func(t *Template) { t.Artifacts[0].Name = strings.Repeat("a", 129) },
			"artifacts[0].name: must be at most 128 characters, not 129"},
		{"duplicate name", func(t *Template) { t.Artifacts[1].Name = "tool" },
			`artifacts[1].name: "tool" is already the name of artifacts[0]`},
		{"too many", func(t *Template) {
			for i := 0; i < MaxArtifacts; i++ {
				t.Artifacts = append(t.Artifacts, Artifact{Name: "a" + strings.Repeat("x", i), Sources: t.Artifacts[1].Sources})
			}
		}, "artifacts: must list at most 32 artifacts, not 34"},
		{"no sources", func(t *Template) { t.Artifacts[1].Sources = nil },
			"artifacts[1].sources: must list at least one source (arch, url, digest or checksumFile)"},
		{"no arch", func(t *Template) { t.Artifacts[1].Sources[0].Arch = "" }, "artifacts[1].sources[0].arch: must be set"},
		{"unknown arch", func(t *Template) { t.Artifacts[1].Sources[0].Arch = "riscv64" },
			`artifacts[1].sources[0].arch: must be one of x86_64, aarch64, not "riscv64"`},
		{"arch twice", func(t *Template) { t.Artifacts[0].Sources[1].Arch = ArchX8664 },
			"artifacts[0].sources[1].arch: x86_64 already has a source: artifacts[0].sources[0]"},
		{"no url", func(t *Template) { t.Artifacts[1].Sources[0].URL = "" }, "artifacts[1].sources[0].url: must be set"},
		{"ftp url", func(t *Template) { t.Artifacts[1].Sources[0].URL = "ftp://example.org/x" },
			`artifacts[1].sources[0].url: must be an http(s) URL, not "ftp://example.org/x"`},
		{"credentials in url", func(t *Template) { t.Artifacts[1].Sources[0].URL = "https://u:p@example.org/x" },
			`artifacts[1].sources[0].url: must not hold credentials (user:password@), not "https://<redacted>@example.org/x": the URL is printed and stored`},
		{"long url", func(t *Template) { t.Artifacts[1].Sources[0].URL = "https://example.org/" + strings.Repeat("a", 2048) },
			"artifacts[1].sources[0].url: must be at most 2048 bytes, not 2068"},
		{"other template form", func(t *Template) { t.Artifacts[0].Sources[0].URL = "https://example.org/{{.Env.HOME}}/x" },
			`artifacts[0].sources[0].url: may use params only as {{.param.NAME}}, not "https://example.org/{{.Env.HOME}}/x"`},
		{"neither digest nor checksumFile", func(t *Template) { t.Artifacts[1].Sources[0].ChecksumFile = nil },
			"artifacts[1].sources[0].digest: must be set (or checksumFile must name the release's checksum file)"},
		{"digest and checksumFile", func(t *Template) { t.Artifacts[1].Sources[0].Digest = testDigest },
			"artifacts[1].sources[0].checksumFile: must not be set together with digest (the digest pins the file already)"},
		{"bad digest", func(t *Template) { t.Artifacts[0].Sources[0].Digest = "md5:abc" },
			`artifacts[0].sources[0].digest: must be sha256:<64 hex digits> or sha512:<128 hex digits>, not "md5:abc"`},
		{"checksum file url", func(t *Template) { t.Artifacts[1].Sources[0].ChecksumFile.URL = "" },
			"artifacts[1].sources[0].checksumFile.url: must be set"},
		{"checksum file name", func(t *Template) { t.Artifacts[1].Sources[0].ChecksumFile.Name = "../x y" },
			`artifacts[1].sources[0].checksumFile.name: must be a file name as the checksum file lists it (^[A-Za-z0-9._+-]+$), not "../x y"`},
		{"install without path", func(t *Template) { t.Artifacts[0].Install.Path = "" },
			"artifacts[0].install.path: must be set"},
		{"relative install path", func(t *Template) { t.Artifacts[0].Install.Path = "usr/local/bin/tool" },
			`artifacts[0].install.path: must be a clean absolute path, not "usr/local/bin/tool"`},
		{"unclean install path", func(t *Template) { t.Artifacts[0].Install.Path = "/usr/local/../bin/tool" },
			`artifacts[0].install.path: must be a clean absolute path, not "/usr/local/../bin/tool"`},
		{"install into guestcatalog's state", func(t *Template) { t.Artifacts[0].Install.Path = "/var/lib/guestcatalog/provisioned" },
			`artifacts[0].install.path: "/var/lib/guestcatalog/provisioned" is written by guestcatalog (under /var/lib/guestcatalog, /etc/guestcatalog or /var/log/guestcatalog-provision.log): an artifact may not be installed there`},
		{"control character in install path", func(t *Template) { t.Artifacts[0].Install.Path = "/usr/local/bin/to\x1bol" },
			`artifacts[0].install.path: must not contain the control character \x1b, not "/usr/local/bin/to\x1bol"`},
		{"install path twice", func(t *Template) { t.Artifacts[1].Install = &ArtifactInstall{Path: "/usr/local/bin/tool"} },
			`artifacts[1].install.path: "/usr/local/bin/tool" is already where artifacts[0] is installed`},
		{"install mode", func(t *Template) { t.Artifacts[0].Install.Mode = "755" },
			`artifacts[0].install.mode: must be octal like "0755" (^0[0-7]{3}$), not "755"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := artifactTemplate()
			tc.modify(tmpl)
			err := validateGo(tmpl)
			require.Error(t, err)
			assert.Equal(t, "made in Go: "+tc.want, err.Error())
		})
	}
}

// TestArtifactParams: the rules that need the composed template's params
// and the caller's --set values.
func TestArtifactParams(t *testing.T) {
	loc := func(string) Position { return Position{File: "made in Go"} }
	for _, tc := range []struct {
		name   string
		modify func(*Template)
		set    map[string]string
		want   string
	}{
		{"undeclared param", func(t *Template) { t.Artifacts[1].Sources[0].URL = "https://example.org/{{.param.release}}/b" }, nil,
			`made in Go: artifacts[1].sources[0].url: uses param "release", which the template does not declare (declared: version)`},
		{"param value not a URL segment", func(t *Template) { t.Params["version"] = "v1/../../etc" }, nil,
			`made in Go: artifacts[0].sources[0].url: uses param version="v1/../../etc", which cannot go into a URL (letters, digits and . _ + ~ - only)`},
		{"--set value not a URL segment", nil, map[string]string{"version": "a?b"},
			`made in Go: artifacts[0].sources[0].url: uses param version="a?b", which cannot go into a URL (letters, digits and . _ + ~ - only)`},
		{"--set under a pinned digest", nil, map[string]string{"version": "v9.9.9+k3s1"},
			`made in Go: artifacts[0].sources[0].digest: pins the file for version="v1.2.3+k3s1"; with version="v9.9.9+k3s1" the URL names another file (use checksumFile, or update the digest)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := artifactTemplate()
			if tc.modify != nil {
				tc.modify(tmpl)
			}
			ps := checkArtifactParams(tmpl, loc, tc.set)
			require.NotEmpty(t, ps)
			assert.Equal(t, tc.want, ps[0].Error())
		})
	}
	// The same --set under a checksumFile source is fine: the digest
	// follows the version.
	tmpl := artifactTemplate()
	tmpl.Artifacts[0].Sources = tmpl.Artifacts[0].Sources[1:]
	assert.Empty(t, checkArtifactParams(tmpl, loc, map[string]string{"version": "v9.9.9+k3s1"}))
}

func TestExpandURL(t *testing.T) {
	u, err := ExpandURL("https://x/{{.param.v}}/{{ .param.v }}-{{.param.w}}", map[string]string{"v": "v1.2+k3s1", "w": "amd64"})
	require.NoError(t, err)
	assert.Equal(t, "https://x/v1.2+k3s1/v1.2+k3s1-amd64", u)
	_, err = ExpandURL("https://x/{{.param.nope}}", nil)
	assert.EqualError(t, err, `uses param "nope", which the template does not declare`)
	_, err = ExpandURL("https://x/{{.param.v}}", map[string]string{"v": "a/b"})
	assert.EqualError(t, err, `param v="a/b" cannot go into a URL (letters, digits and . _ + ~ - only)`)
	_, err = ExpandURL("https://x/{{ printf }}", nil)
	assert.EqualError(t, err, "has a template form other than {{.param.NAME}}")
	assert.Equal(t, []string{"v", "w"}, URLParams("{{.param.v}}{{.param.w}}{{.param.v}}"))
}

func TestArtifactsFor(t *testing.T) {
	tmpl := artifactTemplate()
	got, err := tmpl.ArtifactsFor(ArchAarch64)
	assert.Error(t, err, "bundle.tar.gz has no aarch64 source")
	assert.Nil(t, got)
	assert.Contains(t, err.Error(), "artifacts[1] (bundle.tar.gz): no source for aarch64")
	got, err = tmpl.ArtifactsFor(ArchX8664)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, "https://example.org/v1.2.3+k3s1/tool", got[0].URL)
	assert.Equal(t, testDigest, got[0].Digest)
	assert.Equal(t, "0755", got[0].Install.InstallMode())
	assert.Equal(t, "https://example.org/bundle.tar.gz.sha256", got[1].ChecksumURL)
	assert.Equal(t, "", got[1].ChecksumName)
}

// TestArtifactsYAML: problems carry file:line and the field path; a nearer
// document replaces an artifact of the same name; --set reaches the URL.
func TestArtifactsYAML(t *testing.T) {
	c := catalogFromYAML(t, `apiVersion: guestcatalog.dev/v1alpha1
kind: Fragment
name: engines/tool
engine: {name: tool}
params: {version: v1.0.0}
artifacts:
  - name: tool
    sources:
      - arch: x86_64
        url: https://example.org/{{.param.version}}/tool
        checksumFile: {url: "https://example.org/{{.param.version}}/SHA256SUMS", name: tool}
    install: {path: /usr/local/bin/tool}
provision:
  - mode: system
    script: tool --version
---
apiVersion: guestcatalog.dev/v1alpha1
kind: Template
name: debian-13-tool
base: [engines/tool]
distro: {name: debian, release: "13", family: debian}
images: [{arch: x86_64, build: {suite: trixie}}]
artifacts:
  - name: extra
    sources:
      - arch: x86_64
        url: https://example.org/extra
        digest: sha256:XYZ
`)
	r, err := c.Check("debian-13-tool")
	require.NoError(t, err)
	require.Len(t, r.Errors, 1)
	assert.Regexp(t, `t\.yaml:28:17: artifacts\[0\]\.sources\[0\]\.digest: must be sha256:<64 hex digits> or sha512:<128 hex digits>, not "sha256:XYZ"$`, r.Errors[0].Error())

	c = catalogFromYAML(t, strings.Replace(strings.Replace(`apiVersion: guestcatalog.dev/v1alpha1
kind: Fragment
name: engines/tool
engine: {name: tool}
params: {version: v1.0.0}
artifacts:
  - name: tool
    sources:
      - arch: x86_64
        url: https://example.org/{{.param.version}}/tool
        checksumFile: {url: "https://example.org/{{.param.version}}/SHA256SUMS", name: tool}
    install: {path: /usr/local/bin/tool}
provision:
  - mode: system
    script: tool --version
---
apiVersion: guestcatalog.dev/v1alpha1
kind: Template
name: debian-13-tool
base: [engines/tool]
distro: {name: debian, release: "13", family: debian}
images: [{arch: x86_64, build: {suite: trixie}}]
artifacts:
  - name: tool
    sources:
      - arch: x86_64
        url: https://mirror.example.org/tool
        digest: DIGEST
`, "DIGEST", testDigest, 1), "\t", "", -1))
	tmpl, err := c.Resolve("debian-13-tool")
	require.NoError(t, err)
	require.Len(t, tmpl.Artifacts, 1, "the template's tool replaces the fragment's")
	assert.Equal(t, "https://mirror.example.org/tool", tmpl.Artifacts[0].Sources[0].URL)
	assert.Nil(t, tmpl.Artifacts[0].Install, "replaced whole, not merged")
	dc := tmpl.DeepCopy()
	dc.Artifacts[0].Sources[0].URL = "changed"
	assert.Equal(t, "https://mirror.example.org/tool", tmpl.Artifacts[0].Sources[0].URL)
}

func TestArtifactsSetReachesURL(t *testing.T) {
	c := catalogFromYAML(t, `apiVersion: guestcatalog.dev/v1alpha1
kind: Template
name: debian-13-tool
engine: {name: tool}
distro: {name: debian, release: "13", family: debian}
images: [{arch: x86_64, build: {suite: trixie}}]
params: {version: v1.0.0}
artifacts:
  - name: tool
    sources:
      - arch: x86_64
        url: https://example.org/{{.param.version}}/tool
        checksumFile: {url: "https://example.org/{{.param.version}}/SHA256SUMS", name: "tool-{{.param.version}}"}
provision:
  - mode: system
    script: "$GUESTCATALOG_ARTIFACTS/tool --version"
`)
	tmpl, err := c.Resolve("debian-13-tool", WithParams(map[string]string{"version": "v2.0.0"}))
	require.NoError(t, err)
	got, err := tmpl.ArtifactsFor(ArchX8664)
	require.NoError(t, err)
	assert.Equal(t, "https://example.org/v2.0.0/tool", got[0].URL)
	assert.Equal(t, "https://example.org/v2.0.0/SHA256SUMS", got[0].ChecksumURL)
	assert.Equal(t, "tool-v2.0.0", got[0].ChecksumName)
	_, err = c.Resolve("debian-13-tool", WithParams(map[string]string{"version": "v2/../x"}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `artifacts[0].sources[0].url: uses param version="v2/../x", which cannot go into a URL`)
}

// TestShippedEnginesPinTheirArtifacts: the vendor engines install from
// artifacts with a source for every arch their templates boot, and their
// scripts download nothing (no curl, wget or installer URL).
func TestShippedEnginesPinTheirArtifacts(t *testing.T) {
	c, err := Load(context.Background())
	require.NoError(t, err)
	downloads := regexp.MustCompile(`\bcurl\b|\bwget\b|get\.k3s\.io|get\.rke2\.io|get\.k0s\.sh|pkgs\.k8s\.io`)
	for _, name := range []string{"engines/k3s", "engines/k0s", "engines/rke2", "engines/k8s"} {
		r, err := c.Check(name)
		require.NoError(t, err)
		require.NotNil(t, r.Template, name)
		f := r.Template
		require.NotEmpty(t, f.Artifacts, name)
		for _, arch := range []string{ArchX8664, ArchAarch64} {
			got, err := f.ArtifactsFor(arch)
			require.NoError(t, err, "%s %s", name, arch)
			for _, a := range got {
				assert.Regexp(t, `^https://(github\.com/|dl\.k8s\.io/)`, a.URL, "%s: real upstream URL", name)
				assert.True(t, a.Digest != "" || a.ChecksumURL != "", "%s %s: pinned or checked against the release's checksum file", name, a.Name)
			}
		}
		for i, s := range f.Provision {
			assert.NotRegexp(t, downloads, s.Script, "%s provision[%d] downloads in the guest", name, i)
		}
	}
}
