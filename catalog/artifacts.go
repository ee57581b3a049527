package catalog

import (
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"
)

// Artifacts (issue 11 item 3): vendor files a template installs — release
// binaries, tarballs — declared with a URL and a digest per arch (or the
// release's checksum file when no digest can be pinned yet). The framework
// fetches them on the host through the verified download cache, puts them
// on a read-only drive (an ISO labelled ArtifactsLabel) and the guest
// installs from there: the guest downloads no executable the catalog does
// not pin.

// Artifact is one vendor file.
type Artifact struct {
	// Name is the file's name on the artifacts drive
	// ($GUESTCATALOG_ARTIFACTS/<name> in scripts); unique in a template.
	Name        string `yaml:"name" json:"name" jsonschema:"required,pattern=^[a-z0-9][a-z0-9._+-]*$"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// Sources: where the file comes from, one entry per arch. The URLs
	// may use the template's params as {{.param.NAME}}.
	Sources []ArtifactSource `yaml:"sources" json:"sources" jsonschema:"required"`
	// Install, when set, copies the file to Path with Mode before the
	// first provisioning step; otherwise a script uses it from
	// $GUESTCATALOG_ARTIFACTS.
	Install *ArtifactInstall `yaml:"install,omitempty" json:"install,omitempty"`
}

// ArtifactSource is an artifact's file for one arch.
type ArtifactSource struct {
	Arch string `yaml:"arch" json:"arch" jsonschema:"required,enum=x86_64,enum=aarch64"`
	URL  string `yaml:"url" json:"url" jsonschema:"required"`
	// Digest pins the file: "sha256:<hex>" or "sha512:<hex>".
	Digest string `yaml:"digest,omitempty" json:"digest,omitempty" jsonschema:"pattern=^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$"`
	// ChecksumFile, instead of Digest, names the release's checksum file:
	// the host fetches it and takes the digest for Name from it (recorded
	// in report.json); `catalog images update` turns it into a Digest.
	ChecksumFile *ChecksumFile `yaml:"checksumFile,omitempty" json:"checksumFile,omitempty"`
}

// ChecksumFile is a release's list of digests ("<hex>  <name>" lines, as
// sha256sum writes them, or a single digest for one file).
type ChecksumFile struct {
	URL string `yaml:"url" json:"url" jsonschema:"required"`
	// Name is the file name to look up (a leading '*' of binary mode is
	// accepted); empty when the file holds one digest only (dl.k8s.io's
	// <file>.sha256).
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
}

// ArtifactInstall places an artifact in the guest.
type ArtifactInstall struct {
	// Path is the absolute guest path the file is copied to.
	Path string `yaml:"path" json:"path" jsonschema:"required"`
	// Mode is the file's octal mode; default 0755.
	Mode string `yaml:"mode,omitempty" json:"mode,omitempty" jsonschema:"pattern=^0[0-7]{3}$"`
}

// Bounds of the artifacts of one template.
const (
	MaxArtifacts       = 32
	MaxArtifactName    = 128
	MaxArtifactURL     = 2048
	DefaultInstallMode = "0755"
	// GuestArtifactsDir is where the guest mounts the artifacts drive
	// (read-only); scripts see it as $GUESTCATALOG_ARTIFACTS.
	GuestArtifactsDir = GuestStateDir + "/artifacts"
	// ArtifactsLabel is the volume label of the artifacts drive.
	ArtifactsLabel = "GCARTIFACTS"
)

var (
	artifactNamePattern = tagPattern[Artifact]("Name")
	// checksumNamePattern is a checksum file's entry name (params expanded).
	checksumNamePattern = regexp.MustCompile(`^[A-Za-z0-9._+-]+$`)
	artifactDigest      = tagPattern[ArtifactSource]("Digest")
	// paramRef is the one template form a URL may use.
	paramRef = regexp.MustCompile(`\{\{\s*\.param\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)
	// urlParamValue is what a param's value may be where a URL uses it: a
	// path segment with no '/', '?', '#', '%' or space.
	urlParamValue = regexp.MustCompile(`^[A-Za-z0-9._+~-]+$`)
)

// URLParams returns the params a URL uses ({{.param.NAME}}), in order of
// first use.
func URLParams(u string) []string {
	var out []string
	for _, m := range paramRef.FindAllStringSubmatch(u, -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

// ExpandURL replaces every {{.param.NAME}} of u by the param's value. A
// param that is not declared, a value that is not a plain path segment, or
// any other template form is an error.
func ExpandURL(u string, params map[string]string) (string, error) {
	var errs []string
	out := paramRef.ReplaceAllStringFunc(u, func(m string) string {
		name := paramRef.FindStringSubmatch(m)[1]
		v, ok := params[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Sprintf("uses param %q, which the template does not declare", name))
		case !urlParamValue.MatchString(v):
			errs = append(errs, fmt.Sprintf("param %s=%q cannot go into a URL (letters, digits and . _ + ~ - only)", name, v))
		}
		return v
	})
	if rest := paramRef.ReplaceAllString(u, ""); strings.Contains(rest, "{{") || strings.Contains(rest, "}}") {
		errs = append(errs, "has a template form other than {{.param.NAME}}")
	}
	if len(errs) > 0 {
		return "", fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return out, nil
}

// SourceFor returns the artifact's source for arch, or false.
func (a Artifact) SourceFor(arch string) (ArtifactSource, bool) {
	for _, s := range a.Sources {
		if s.Arch == arch {
			return s, true
		}
	}
	return ArtifactSource{}, false
}

// InstallMode is the mode Install gives the file (default 0755).
func (i *ArtifactInstall) InstallMode() string {
	if i == nil || i.Mode == "" {
		return DefaultInstallMode
	}
	return i.Mode
}

// ResolvedArtifact is an artifact's source for one arch with its params
// expanded: what the host fetches.
type ResolvedArtifact struct {
	// Index is the artifact's index in the template's artifacts.
	Index   int
	Name    string
	Arch    string
	URL     string
	Digest  string // "" when ChecksumURL gives it
	Install *ArtifactInstall
	// ChecksumURL and ChecksumName: the release's checksum file and the
	// name to look up in it (see ChecksumFile).
	ChecksumURL, ChecksumName string
}

// ArtifactsFor returns the template's artifacts for arch with their URLs
// expanded from the params. An artifact without a source for arch is an
// error: the template cannot be provisioned there.
func (t *Template) ArtifactsFor(arch string) ([]ResolvedArtifact, error) {
	var out []ResolvedArtifact
	var errs []string
	for i, a := range t.Artifacts {
		s, ok := a.SourceFor(arch)
		if !ok {
			errs = append(errs, fmt.Sprintf("artifacts[%d] (%s): no source for %s", i, a.Name, arch))
			continue
		}
		r := ResolvedArtifact{Index: i, Name: a.Name, Arch: arch, Digest: s.Digest, Install: a.Install}
		u, err := ExpandURL(s.URL, t.Params)
		if err != nil {
			errs = append(errs, fmt.Sprintf("artifacts[%d] (%s) url: %v", i, a.Name, err))
		}
		r.URL = u
		if cf := s.ChecksumFile; cf != nil {
			cu, err := ExpandURL(cf.URL, t.Params)
			if err != nil {
				errs = append(errs, fmt.Sprintf("artifacts[%d] (%s) checksumFile.url: %v", i, a.Name, err))
			}
			r.ChecksumURL = cu
			n, err := ExpandURL(cf.Name, t.Params)
			if err != nil {
				errs = append(errs, fmt.Sprintf("artifacts[%d] (%s) checksumFile.name: %v", i, a.Name, err))
			}
			r.ChecksumName = n
		}
		out = append(out, r)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("template %s: %s", Quote(t.Name), strings.Join(errs, "; "))
	}
	return out, nil
}

// artifacts checks one document's artifacts: what can be wrong whatever it
// is composed with.
func (c *checker) artifacts(t *Template) {
	if len(t.Artifacts) > MaxArtifacts {
		c.errf("artifacts", "must list at most %d artifacts, not %d", MaxArtifacts, len(t.Artifacts))
	}
	names := map[string]int{}
	paths := map[string]int{}
	for i, a := range t.Artifacts {
		f := indexPath("artifacts", i)
		switch {
		case a.Name == "":
			c.errf(f+".name", "must be set")
		case len(a.Name) > MaxArtifactName:
			c.errf(f+".name", "must be at most %d characters, not %d", MaxArtifactName, len(a.Name))
		case !artifactNamePattern.MatchString(a.Name):
			c.errf(f+".name", "must be a file name (%s), not %q", artifactNamePattern, a.Name)
		default:
			if j, dup := names[a.Name]; dup {
				c.errf(f+".name", "%q is already the name of artifacts[%d]", a.Name, j)
			} else {
				names[a.Name] = i
			}
		}
		c.text(f+".description", a.Description, false)
		if len(a.Sources) == 0 {
			c.errf(f+".sources", "must list at least one source (arch, url, digest or checksumFile)")
		}
		arches := map[string]int{}
		for j, s := range a.Sources {
			sf := indexPath(f+".sources", j)
			c.required(sf+".arch", s.Arch, archNames)
			if k, dup := arches[s.Arch]; dup && s.Arch != "" {
				c.errf(sf+".arch", "%s already has a source: %s[%d]", s.Arch, f+".sources", k)
			} else {
				arches[s.Arch] = j
			}
			c.artifactURL(sf+".url", s.URL)
			switch {
			case s.Digest != "" && s.ChecksumFile != nil:
				c.errf(sf+".checksumFile", "must not be set together with digest (the digest pins the file already)")
			case s.Digest == "" && s.ChecksumFile == nil:
				c.errf(sf+".digest", "must be set (or checksumFile must name the release's checksum file)")
			}
			if s.Digest != "" && !artifactDigest.MatchString(s.Digest) {
				c.errf(sf+".digest", "must be sha256:<64 hex digits> or sha512:<128 hex digits>, not %q", s.Digest)
			}
			if cf := s.ChecksumFile; cf != nil {
				c.artifactURL(sf+".checksumFile.url", cf.URL)
				if cf.Name != "" && !checksumNamePattern.MatchString(paramRef.ReplaceAllString(cf.Name, "x")) {
					c.errf(sf+".checksumFile.name", "must be a file name as the checksum file lists it (%s), not %q", checksumNamePattern, cf.Name)
				}
			}
		}
		if in := a.Install; in != nil {
			inf := f + ".install"
			switch {
			case in.Path == "":
				c.errf(inf+".path", "must be set")
			case !path.IsAbs(in.Path) || path.Clean(in.Path) != in.Path:
				c.errf(inf+".path", "must be a clean absolute path, not %q", in.Path)
			case strings.HasSuffix(in.Path, "/") || in.Path == "/":
				c.errf(inf+".path", "must name a file, not %q", in.Path)
			case ReservedGuestPath(in.Path):
				c.errf(inf+".path", "%q is written by guestcatalog (under %s, %s or %s): an artifact may not be installed there", in.Path, GuestStateDir, GuestConfigDir, GuestLogPath)
			default:
				if c.path(inf+".path", in.Path) {
					if j, dup := paths[in.Path]; dup {
						c.errf(inf+".path", "%q is already where artifacts[%d] is installed", in.Path, j)
					} else {
						paths[in.Path] = i
					}
				}
			}
			if in.Mode != "" && !permPattern.MatchString(in.Mode) {
				c.errf(inf+".mode", "must be octal like \"0755\" (%s), not %q", permPattern, in.Mode)
			}
		}
	}
}

// artifactURL checks a URL that may use params: the template form, then the
// URL with each param replaced by a placeholder segment.
func (c *checker) artifactURL(f, u string) {
	switch {
	case u == "":
		c.errf(f, "must be set")
		return
	case len(u) > MaxArtifactURL:
		c.errf(f, "must be at most %d bytes, not %d", MaxArtifactURL, len(u))
		return
	}
	if rest := paramRef.ReplaceAllString(u, ""); strings.Contains(rest, "{{") || strings.Contains(rest, "}}") {
		c.errf(f, "may use params only as {{.param.NAME}}, not %q", u)
		return
	}
	c.checkURL(f, paramRef.ReplaceAllString(u, "p"))
}

// artifactParams checks, on the composed template, that every param an
// artifact URL uses is declared and fits into a URL; and, with the values a
// caller overrides (`--set`), that no pinned digest is asked to cover a
// file its URL no longer names.
func checkArtifactParams(t *Template, loc func(string) Position, overridden map[string]string) Problems {
	c := &checker{loc: loc}
	for i, a := range t.Artifacts {
		for j, s := range a.Sources {
			sf := indexPath(indexPath("artifacts", i)+".sources", j)
			fields := []struct{ f, u string }{{sf + ".url", s.URL}}
			if s.ChecksumFile != nil {
				fields = append(fields, struct{ f, u string }{sf + ".checksumFile.url", s.ChecksumFile.URL},
					struct{ f, u string }{sf + ".checksumFile.name", s.ChecksumFile.Name})
			}
			for _, fu := range fields {
				for _, p := range URLParams(fu.u) {
					v, ok := t.Params[p]
					if o, set := overridden[p]; set && ok {
						v = o
					}
					switch {
					case !ok:
						c.errf(fu.f, "uses param %q, which the template does not declare (declared: %s)", p, declaredParams(t))
					case !urlParamValue.MatchString(v):
						c.errf(fu.f, "uses param %s=%q, which cannot go into a URL (letters, digits and . _ + ~ - only)", p, v)
					}
				}
			}
			if s.Digest == "" {
				continue
			}
			for _, p := range URLParams(s.URL) {
				if v, ok := overridden[p]; ok && v != t.Params[p] {
					c.errf(sf+".digest", "pins the file for %s=%q; with %s=%q the URL names another file (use checksumFile, or update the digest)", p, t.Params[p], p, v)
				}
			}
		}
	}
	return c.errs
}

func declaredParams(t *Template) string {
	if len(t.Params) == 0 {
		return "none"
	}
	return strings.Join(slices.Sorted(maps.Keys(t.Params)), ", ")
}

// composeArtifacts applies src's artifacts over dst's: an artifact with a
// name dst already has replaces it in place, a new one is appended.
func composeArtifacts(dst, src *Template) {
	for _, a := range src.Artifacts {
		a = cloneArtifact(a)
		if i := slices.IndexFunc(dst.Artifacts, func(b Artifact) bool { return b.Name == a.Name }); i >= 0 && a.Name != "" {
			dst.Artifacts[i] = a
			continue
		}
		dst.Artifacts = append(dst.Artifacts, a)
	}
}

func cloneArtifact(a Artifact) Artifact {
	a.Sources = slices.Clone(a.Sources)
	for i, s := range a.Sources {
		if s.ChecksumFile != nil {
			cf := *s.ChecksumFile
			a.Sources[i].ChecksumFile = &cf
		}
	}
	if a.Install != nil {
		in := *a.Install
		a.Install = &in
	}
	return a
}
