package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/ci/freshness"
	"github.com/guestcatalog/guestcatalog/framework/artifacts"
	"github.com/guestcatalog/guestcatalog/framework/fsutil"
)

// Artifacts in `catalog images` (issue 11 item 3): check asks whether each
// artifact URL is served and what its digest rests on; update turns each
// checksumFile entry into a pinned digest, taken from the release's
// checksum file, editing the YAML in place.

// artifactSource is one source of one artifact, as found in a template
// file (File, Line) or in the shipped catalog.
type artifactSource struct {
	Template string `json:"template"`
	Artifact string `json:"artifact"`
	Arch     string `json:"arch"`
	URL      string `json:"url"`
	Digest   string `json:"digest,omitempty"`
	// ChecksumURL and ChecksumName: the release's checksum file, when the
	// source has no digest yet.
	ChecksumURL  string `json:"checksumFile,omitempty"`
	ChecksumName string `json:"checksumName,omitempty"`
	File         string `json:"file,omitempty"`
	Line         int    `json:"line,omitempty"`
	// Err: the URL could not be expanded (an undeclared param).
	Err string `json:"-"`

	// where the checksumFile mapping sits (update rewrites it)
	cfKeyLine, cfKeyCol int
}

// Artifact digest states of `images check`.
const (
	artifactPinned    = "pinned"        // the catalog pins a digest
	artifactFromSums  = "checksum-file" // the checksum file gives one; update would pin it
	artifactNoSum     = "missing"       // the checksum file is gone or does not list the file
	artifactBadSource = "invalid"       // the URL cannot be expanded
)

// artifactResult is `images check`'s verdict on one artifact source.
type artifactResult struct {
	artifactSource
	URLState    freshness.ProbeResult `json:"urlState"`
	DigestState string                `json:"digestState"`
	// Found is the digest the checksum file gives (checksum-file state).
	Found  string `json:"found,omitempty"`
	Detail string `json:"detail,omitempty"`
}

func (r artifactResult) failed() bool {
	return r.URLState.State != freshness.URLOK || r.DigestState == artifactNoSum || r.DigestState == artifactBadSource
}

// sourcesOf lists a (composed or single) document's artifact sources with
// their URLs expanded from params.
func sourcesOf(name string, params map[string]string, arts []catalog.Artifact) []artifactSource {
	var out []artifactSource
	for _, a := range arts {
		for _, s := range a.Sources {
			src := artifactSource{Template: name, Artifact: a.Name, Arch: s.Arch, Digest: s.Digest}
			var errs []string
			u, err := catalog.ExpandURL(s.URL, params)
			if err != nil {
				errs = append(errs, "url: "+err.Error())
			}
			src.URL = u
			if cf := s.ChecksumFile; cf != nil {
				if src.ChecksumURL, err = catalog.ExpandURL(cf.URL, params); err != nil {
					errs = append(errs, "checksumFile.url: "+err.Error())
				}
				if src.ChecksumName, err = catalog.ExpandURL(cf.Name, params); err != nil {
					errs = append(errs, "checksumFile.name: "+err.Error())
				}
			}
			if len(errs) > 0 {
				src.Err = strings.Join(errs, "; ")
				src.URL = s.URL
			}
			out = append(out, src)
		}
	}
	return out
}

// catalogArtifacts lists the artifact sources of the shipped catalog:
// those of the fragments and of the templates, once per (URL, arch).
func (a *app) catalogArtifacts(ctx context.Context) ([]artifactSource, error) {
	c, err := a.loadCatalog(ctx)
	if err != nil {
		return nil, err
	}
	var all []artifactSource
	for _, f := range c.Fragments() {
		all = append(all, sourcesOf(f.Name, f.Params, f.Artifacts)...)
	}
	for _, t := range c.Templates() {
		all = append(all, sourcesOf(t.Name, t.Params, t.Artifacts)...)
	}
	return dedupeSources(all), nil
}

func dedupeSources(in []artifactSource) []artifactSource {
	seen := map[string]bool{}
	var out []artifactSource
	for _, s := range in {
		k := s.Arch + " " + s.URL + " " + s.Digest + " " + s.ChecksumURL
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, s)
	}
	return out
}

// checkArtifacts probes each source's URL and reads its checksum file.
func checkArtifacts(ctx context.Context, client *freshness.Client, srcs []artifactSource) []artifactResult {
	out := make([]artifactResult, len(srcs))
	for i, s := range srcs {
		r := artifactResult{artifactSource: s}
		if s.Err != "" {
			r.DigestState, r.Detail = artifactBadSource, s.Err
			r.URLState = freshness.ProbeResult{State: freshness.URLError, Err: "not checked"}
			out[i] = r
			continue
		}
		r.URLState = client.Probe(ctx, s.URL)
		if s.Digest != "" {
			r.DigestState = artifactPinned
		} else {
			d, err := checksumFromClient(ctx, client, s.ChecksumURL, s.ChecksumName)
			if err != nil {
				r.DigestState, r.Detail = artifactNoSum, err.Error()
			} else {
				r.DigestState, r.Found = artifactFromSums, d
			}
		}
		out[i] = r
	}
	return out
}

func checksumFromClient(ctx context.Context, client *freshness.Client, url, name string) (string, error) {
	body, err := client.Get(ctx, url)
	if err != nil {
		return "", fmt.Errorf("checksum file: %w", err)
	}
	d, err := artifacts.ParseChecksumFile(body, name)
	if err != nil {
		return "", fmt.Errorf("checksum file %s: %w", url, err)
	}
	return d, nil
}

func writeArtifactTable(w io.Writer, rs []artifactResult) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ARTIFACT\tARCH\tURL\tDIGEST\tSOURCE")
	for _, r := range rs {
		url := string(r.URLState.State)
		if r.URLState.Status != 0 {
			url = fmt.Sprintf("%s (%d)", url, r.URLState.Status)
		}
		digest := r.DigestState
		switch r.DigestState {
		case artifactPinned:
			digest += " " + shortArtifactDigest(r.Digest)
		case artifactFromSums:
			digest += " " + shortArtifactDigest(r.Found) + " (unpinned: images update pins it)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", catalog.Sanitize(r.Template+"/"+r.Artifact), r.Arch, url, digest, catalog.Sanitize(catalog.RedactURL(r.URL)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rs {
		if !r.failed() {
			continue
		}
		why := r.Detail
		if r.URLState.State != freshness.URLOK {
			why = strings.TrimSpace(string(r.URLState.State) + " " + r.URLState.Err + " " + why)
		}
		fmt.Fprintf(w, "artifact %s/%s %s: %s\n", catalog.Sanitize(r.Template), catalog.Sanitize(r.Artifact), r.Arch, catalog.Sanitize(why))
	}
	return nil
}

// writeArtifactMarkdown is the artifacts' table for $GITHUB_STEP_SUMMARY.
func writeArtifactMarkdown(w io.Writer, rs []artifactResult) error {
	cell := func(s string) string {
		return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;", "\n", " ").Replace(catalog.Sanitize(s))
	}
	if _, err := fmt.Fprint(w, "\n| artifact | arch | URL | digest |\n|---|---|---|---|\n"); err != nil {
		return err
	}
	for _, r := range rs {
		digest := r.DigestState
		switch r.DigestState {
		case artifactPinned:
			digest += " " + shortArtifactDigest(r.Digest)
		case artifactFromSums:
			digest += " " + shortArtifactDigest(r.Found)
		default:
			digest += ": " + r.Detail
		}
		url := string(r.URLState.State)
		if r.URLState.Status != 0 {
			url = fmt.Sprintf("%s (%d)", url, r.URLState.Status)
		}
		if _, err := fmt.Fprintf(w, "| %s | %s | %s | %s |\n", cell(r.Template+"/"+r.Artifact), r.Arch, cell(url), cell(digest)); err != nil {
			return err
		}
	}
	return nil
}

func shortArtifactDigest(d string) string {
	if i := strings.IndexByte(d, ':'); i >= 0 && len(d) > i+13 {
		return d[:i+13] + "…"
	}
	return d
}

// scanArtifactFiles reads the artifact sources of every YAML file under
// dir, with the position of each checksumFile (for update).
func scanArtifactFiles(dir string) ([]artifactSource, error) {
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
		return nil, err
	}
	var out []artifactSource
	for _, p := range files {
		src, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		s, err := scanArtifactFile(p, src)
		if err != nil {
			return nil, err
		}
		out = append(out, s...)
	}
	return out, nil
}

func scanArtifactFile(path string, src []byte) ([]artifactSource, error) {
	f, err := parser.ParseBytes(src, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []artifactSource
	for _, doc := range f.Docs {
		top := yamlMapping(doc.Body)
		name := ""
		params := map[string]string{}
		var arts *ast.SequenceNode
		for _, mv := range top {
			switch yamlKey(mv) {
			case "name":
				name = yamlString(mv.Value)
			case "params":
				for _, kv := range yamlMapping(mv.Value) {
					params[yamlKey(kv)] = yamlString(kv.Value)
				}
			case "artifacts":
				arts, _ = yamlUnwrap(mv.Value).(*ast.SequenceNode)
			}
		}
		if arts == nil {
			continue
		}
		for _, item := range arts.Values {
			var a catalog.Artifact
			var sources []*ast.SequenceNode
			for _, kv := range yamlMapping(item) {
				switch yamlKey(kv) {
				case "name":
					a.Name = yamlString(kv.Value)
				case "sources":
					if seq, ok := yamlUnwrap(kv.Value).(*ast.SequenceNode); ok {
						sources = append(sources, seq)
					}
				}
			}
			for _, seq := range sources {
				for _, sn := range seq.Values {
					var s catalog.ArtifactSource
					line, keyLine, keyCol := 0, 0, 0
					for _, kv := range yamlMapping(sn) {
						switch yamlKey(kv) {
						case "arch":
							s.Arch = yamlString(kv.Value)
						case "url":
							s.URL = yamlString(kv.Value)
							if t := kv.Value.GetToken(); t != nil && t.Position != nil {
								line = t.Position.Line
							}
						case "digest":
							s.Digest = yamlString(kv.Value)
						case "checksumFile":
							cf := &catalog.ChecksumFile{}
							for _, ckv := range yamlMapping(kv.Value) {
								switch yamlKey(ckv) {
								case "url":
									cf.URL = yamlString(ckv.Value)
								case "name":
									cf.Name = yamlString(ckv.Value)
								}
							}
							s.ChecksumFile = cf
							if t := kv.Key.GetToken(); t != nil && t.Position != nil {
								keyLine, keyCol = t.Position.Line, t.Position.Column
							}
						}
					}
					got := sourcesOf(name, params, []catalog.Artifact{{Name: a.Name, Sources: []catalog.ArtifactSource{s}}})
					for _, g := range got {
						g.File, g.Line, g.cfKeyLine, g.cfKeyCol = path, line, keyLine, keyCol
						out = append(out, g)
					}
				}
			}
		}
	}
	return out, nil
}

func yamlUnwrap(n ast.Node) ast.Node {
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

func yamlMapping(n ast.Node) []*ast.MappingValueNode {
	switch v := yamlUnwrap(n).(type) {
	case *ast.MappingNode:
		return v.Values
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{v}
	}
	return nil
}

func yamlKey(mv *ast.MappingValueNode) string {
	if mv.Key == nil {
		return ""
	}
	if t := mv.Key.GetToken(); t != nil {
		return t.Value
	}
	return ""
}

func yamlString(n ast.Node) string {
	if s, ok := yamlUnwrap(n).(*ast.StringNode); ok {
		return s.Value
	}
	if n != nil {
		if t := yamlUnwrap(n).GetToken(); t != nil {
			return t.Value
		}
	}
	return ""
}

// artifactPin is one checksumFile turned (or to be turned) into a digest.
type artifactPin struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Template string `json:"template"`
	Artifact string `json:"artifact"`
	Arch     string `json:"arch"`
	Digest   string `json:"digest"`
	From     string `json:"from"`
}

// artifactSkip is a checksumFile entry update could not pin.
type artifactSkip struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Artifact string `json:"artifact"`
	Arch     string `json:"arch"`
	Reason   string `json:"reason"`
}

// updateArtifacts pins every checksumFile source of the YAML under dir:
// the digest the release's checksum file gives replaces the checksumFile
// mapping (block or flow) with `digest: <algo>:<hex>` at the same indent;
// every other byte stays. A second run finds nothing to do.
func updateArtifacts(ctx context.Context, client *freshness.Client, dir string, dryRun bool) ([]artifactPin, []artifactSkip, error) {
	srcs, err := scanArtifactFiles(dir)
	if err != nil {
		return nil, nil, err
	}
	byFile := map[string][]artifactPin{}
	var pins []artifactPin
	var skips []artifactSkip
	for _, s := range srcs {
		if s.Digest != "" || s.ChecksumURL == "" && s.Err == "" {
			continue
		}
		if s.Err != "" {
			skips = append(skips, artifactSkip{File: s.File, Line: s.Line, Artifact: s.Artifact, Arch: s.Arch, Reason: s.Err})
			continue
		}
		d, err := checksumFromClient(ctx, client, s.ChecksumURL, s.ChecksumName)
		if err != nil {
			skips = append(skips, artifactSkip{File: s.File, Line: s.Line, Artifact: s.Artifact, Arch: s.Arch, Reason: err.Error()})
			continue
		}
		p := artifactPin{File: s.File, Line: s.cfKeyLine, Template: s.Template, Artifact: s.Artifact, Arch: s.Arch, Digest: d, From: s.ChecksumURL}
		pins = append(pins, p)
		byFile[s.File] = append(byFile[s.File], p)
	}
	var errs []error
	for _, file := range slices.Sorted(func(yield func(string) bool) {
		for k := range byFile {
			if !yield(k) {
				return
			}
		}
	}) {
		src, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out, err := pinChecksumFiles(src, byFile[file], srcs, file)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", file, err))
			continue
		}
		if dryRun {
			continue
		}
		mode := os.FileMode(0o644)
		if st, err := os.Stat(file); err == nil {
			mode = st.Mode().Perm()
		}
		if err := fsutil.WriteFileAtomic(file, out, mode); err != nil {
			errs = append(errs, err)
		}
	}
	return pins, skips, errors.Join(errs...)
}

// pinChecksumFiles rewrites src: each pin's checksumFile (found at its key
// position) becomes `digest: <d>`.
func pinChecksumFiles(src []byte, pins []artifactPin, srcs []artifactSource, file string) ([]byte, error) {
	lines := strings.SplitAfter(string(src), "\n")
	type edit struct{ line, col int }
	var edits []struct {
		edit
		digest string
	}
	for _, p := range pins {
		for _, s := range srcs {
			if s.File == file && s.cfKeyLine == p.Line && s.Artifact == p.Artifact && s.Arch == p.Arch {
				edits = append(edits, struct {
					edit
					digest string
				}{edit{s.cfKeyLine, s.cfKeyCol}, p.Digest})
			}
		}
	}
	// bottom-up, so earlier line numbers stay valid
	slices.SortFunc(edits, func(a, b struct {
		edit
		digest string
	}) int {
		return b.line - a.line
	})
	for _, e := range edits {
		i := e.line - 1
		if i < 0 || i >= len(lines) {
			return nil, fmt.Errorf("line %d: no such line", e.line)
		}
		line := lines[i]
		col := e.col - 1
		if col < 0 || col > len(line) || !strings.HasPrefix(line[col:], "checksumFile:") {
			return nil, fmt.Errorf("line %d: checksumFile not found at column %d", e.line, e.col)
		}
		rest := line[col+len("checksumFile:"):]
		nl := ""
		if strings.HasSuffix(rest, "\n") {
			nl, rest = "\n", strings.TrimSuffix(rest, "\n")
		}
		value := strings.TrimSpace(rest)
		if value != "" && !strings.HasPrefix(value, "#") {
			// flow style on one line: {url: ..., name: ...} [# comment]
			end, err := flowEnd(rest)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", e.line, err)
			}
			lines[i] = line[:col] + "digest: " + e.digest + rest[end:] + nl
			continue
		}
		// block style: drop the nested lines (indented deeper than the key)
		j := i + 1
		last := i
		for ; j < len(lines); j++ {
			t := strings.TrimRight(lines[j], "\r\n")
			if strings.TrimSpace(t) == "" {
				continue
			}
			if indentOf(t) <= col {
				break
			}
			last = j
		}
		lines[i] = line[:col] + "digest: " + e.digest + rest + nl
		lines = append(lines[:i+1], lines[last+1:]...)
	}
	return []byte(strings.Join(lines, "")), nil
}

// flowEnd returns the index just past the flow mapping that starts s
// (after leading spaces), skipping quoted strings.
func flowEnd(s string) (int, error) {
	i := len(s) - len(strings.TrimLeft(s, " \t"))
	if i >= len(s) || s[i] != '{' {
		return 0, errors.New("checksumFile is neither a block nor a one-line flow mapping")
	}
	depth := 0
	var quote byte
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == '"' && c == '\\':
			i++
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '{':
			depth++
		case c == '}':
			depth--
			if depth == 0 {
				return i + 1, nil
			}
		}
	}
	return 0, errors.New("checksumFile's flow mapping does not end on its line")
}

func indentOf(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }

func printArtifactPins(out io.Writer, pins []artifactPin, skips []artifactSkip, dryRun bool) {
	for _, p := range pins {
		file := p.File
		if rel, err := filepath.Rel(".", p.File); err == nil && !strings.HasPrefix(rel, "..") {
			file = rel
		}
		fmt.Fprintf(out, "%s:%d  artifact %s %s\n  checksumFile -> digest %s (from %s)\n", file, p.Line, catalog.Sanitize(p.Artifact), p.Arch, p.Digest, catalog.Sanitize(p.From))
	}
	for _, s := range skips {
		fmt.Fprintf(out, "skipped artifact %s %s (%s:%d): %s\n", catalog.Sanitize(s.Artifact), s.Arch, s.File, s.Line, catalog.Sanitize(s.Reason))
	}
	verb := "pinned"
	if dryRun {
		verb = "would be pinned (dry run: nothing written)"
	}
	fmt.Fprintf(out, "%d artifact sources %s, %d skipped\n", len(pins), verb, len(skips))
}
