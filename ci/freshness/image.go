package freshness

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/guestcatalog/guestcatalog/catalog"
)

// Image is one image entry of the catalog that has a URL.
type Image struct {
	// Name labels the image: the fragment's name without "images/"
	// (debian-13), or the template's distro and release.
	Name     string `json:"image"`
	Arch     string `json:"arch"`
	Location string `json:"url"`
	// Digest is the pinned "sha256:…"/"sha512:…"; empty when NoDigest says why.
	Digest   string `json:"digest,omitempty"`
	NoDigest string `json:"noDigest,omitempty"`
	// File and Line locate the entry's `location:` when read from a file.
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`

	loc, dig *scalar
}

// Pinned reports whether the entry has a digest.
func (im Image) Pinned() bool { return im.Digest != "" }

// scalar is where a YAML scalar sits in its file.
type scalar struct {
	Line, Column int // 1-based, at the first character (the quote if quoted)
	Value        string
	Quote        byte // 0, '"' or '\''
}

// ScanDir reads every *.yaml and *.yml file under dir and returns the image
// entries with a location, in file order. Files that are not catalog
// documents (no `images:`) contribute nothing.
func ScanDir(dir string) ([]Image, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading templates in %s: %w", dir, err)
	}
	sort.Strings(files)
	var (
		out  []Image
		errs []error
	)
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ims, err := scanFile(f, src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, ims...)
	}
	return out, errors.Join(errs...)
}

// scanFile finds the image entries of every document in one file.
func scanFile(path string, src []byte) ([]Image, error) {
	f, err := parser.ParseBytes(src, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []Image
	for _, doc := range f.Docs {
		top := mappingValues(doc.Body)
		name := ""
		for _, mv := range top {
			if keyOf(mv) == "name" {
				name = strings.TrimPrefix(stringValue(mv.Value), "images/")
			}
		}
		for _, mv := range top {
			if keyOf(mv) != "images" {
				continue
			}
			seq, ok := unwrap(mv.Value).(*ast.SequenceNode)
			if !ok {
				continue
			}
			for _, item := range seq.Values {
				im := Image{Name: name, File: path}
				for _, kv := range mappingValues(item) {
					switch keyOf(kv) {
					case "arch":
						im.Arch = stringValue(kv.Value)
					case "location":
						im.loc = scalarOf(kv.Value)
					case "digest":
						im.dig = scalarOf(kv.Value)
					case "noDigest":
						im.NoDigest = stringValue(kv.Value)
					}
				}
				if im.loc == nil || im.loc.Value == "" {
					continue // a build recipe
				}
				im.Location, im.Line = im.loc.Value, im.loc.Line
				if im.dig != nil {
					im.Digest = im.dig.Value
				}
				out = append(out, im)
			}
		}
	}
	return out, nil
}

func unwrap(n ast.Node) ast.Node {
	for {
		switch v := n.(type) {
		case *ast.TagNode:
			n = v.Value
		case *ast.AnchorNode:
			n = v.Value
		default:
			return n
		}
	}
}

func mappingValues(n ast.Node) []*ast.MappingValueNode {
	switch v := unwrap(n).(type) {
	case *ast.MappingNode:
		return v.Values
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{v}
	}
	return nil
}

func keyOf(mv *ast.MappingValueNode) string {
	if mv.Key == nil {
		return ""
	}
	if t := mv.Key.GetToken(); t != nil {
		return t.Value
	}
	return ""
}

func stringValue(n ast.Node) string {
	if s := scalarOf(n); s != nil {
		return s.Value
	}
	return ""
}

// scalarOf returns the position of a single-line string scalar, or nil.
func scalarOf(n ast.Node) *scalar {
	s, ok := unwrap(n).(*ast.StringNode)
	if !ok || s.Token == nil || s.Token.Position == nil {
		return nil
	}
	sc := &scalar{Line: s.Token.Position.Line, Column: s.Token.Position.Column, Value: s.Value}
	switch s.Token.Type {
	case token.DoubleQuoteType:
		sc.Quote = '"'
	case token.SingleQuoteType:
		sc.Quote = '\''
	}
	return sc
}

// FromTemplates lists the image entries with a location of resolved
// templates, labelled by distro and release (debian-13, archlinux).
func FromTemplates(ts []*catalog.Template) []Image {
	var out []Image
	for _, t := range ts {
		name := t.Name
		if t.Distro != nil {
			name = t.Distro.Name
			if t.Distro.Release != "" {
				name += "-" + t.Distro.Release
			}
		}
		for _, im := range t.Images {
			if im.Location == "" {
				continue
			}
			out = append(out, Image{Name: name, Arch: im.Arch, Location: im.Location, Digest: im.Digest, NoDigest: im.NoDigest})
		}
	}
	return out
}

// Dedupe keeps the first entry of each URL (and pinned digest: two
// fragments pinning one URL to different digests are both kept).
func Dedupe(ims []Image) []Image {
	seen := map[string]bool{}
	var out []Image
	for _, im := range ims {
		key := im.Location + "\x00" + im.Digest
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, im)
	}
	return out
}
