package freshness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/guestcatalog/guestcatalog/framework/fsutil"
)

// UpdateOptions tune Update.
type UpdateOptions struct {
	// Distros restricts the update to these distros (see Distros).
	Distros []string
	// DryRun computes the changes without writing any file.
	DryRun bool
	// Logger receives progress at debug level (nil: silent).
	Logger *slog.Logger
}

// Change is one image entry moved to a newer upstream release.
type Change struct {
	File      string `json:"file"`
	Line      int    `json:"line"`
	Image     string `json:"image"`
	Arch      string `json:"arch"`
	OldURL    string `json:"oldURL"`
	NewURL    string `json:"newURL"`
	OldDigest string `json:"oldDigest"`
	NewDigest string `json:"newDigest"`
	// From is the metadata file the new digest was read from.
	From string `json:"from"`
}

// Skip is a pinned entry Update did not look at, and why.
type Skip struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Image  string `json:"image"`
	Arch   string `json:"arch"`
	URL    string `json:"url"`
	Reason string `json:"reason"`
}

// UpdateResult is what Update did (or, with DryRun, would do).
type UpdateResult struct {
	Changes []Change `json:"changes"`
	// Current counts entries already at the newest release.
	Current int    `json:"current"`
	Skipped []Skip `json:"skipped,omitempty"`
	// Files lists the files written (none with DryRun).
	Files []string `json:"files,omitempty"`
}

// edit replaces one scalar's value.
type edit struct {
	at    *scalar
	value string
}

// Update finds, for every pinned image entry of the YAML files under dir,
// the newest release upstream, and rewrites the entry's location and digest
// in place. Nothing else in the files changes: not a comment, not the order,
// not the quoting. Entries without a digest (rolling fallbacks) are left
// alone. An entry whose metadata cannot be read is reported in the error;
// the others are still updated.
func Update(ctx context.Context, c *Client, dir string, opts UpdateOptions) (*UpdateResult, error) {
	for _, d := range opts.Distros {
		if !slices.Contains(Distros(), d) {
			return nil, fmt.Errorf("distro %q: images update knows %s", d, strings.Join(Distros(), ", "))
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	images, err := ScanDir(dir)
	if err != nil {
		return nil, err
	}
	res := &UpdateResult{Changes: []Change{}}
	edits := map[string][]edit{}
	var errs []error
	for _, im := range images {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if !im.Pinned() {
			continue
		}
		up := upstreamFor(im.Location)
		if up == nil {
			res.Skipped = append(res.Skipped, Skip{File: im.File, Line: im.Line, Image: im.Name, Arch: im.Arch, URL: im.Location,
				Reason: "no release metadata known for " + hostOf(im.Location)})
			continue
		}
		if len(opts.Distros) > 0 && !slices.Contains(opts.Distros, up.Distro()) {
			continue
		}
		log.Debug("looking for a newer release", "image", im.Name, "arch", im.Arch, "url", im.Location)
		rel, err := Latest(ctx, c, im.Location)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", im.File, im.Line, err))
			continue
		}
		if rel.Location == im.Location && rel.Digest == im.Digest {
			res.Current++
			continue
		}
		res.Changes = append(res.Changes, Change{File: im.File, Line: im.Line, Image: im.Name, Arch: im.Arch,
			OldURL: im.Location, NewURL: rel.Location, OldDigest: im.Digest, NewDigest: rel.Digest, From: rel.From})
		if rel.Location != im.Location {
			edits[im.File] = append(edits[im.File], edit{im.loc, rel.Location})
		}
		if rel.Digest != im.Digest {
			edits[im.File] = append(edits[im.File], edit{im.dig, rel.Digest})
		}
	}
	for _, file := range sortedKeys(edits) {
		src, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out, err := rewrite(src, edits[file])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", file, err))
			continue
		}
		if opts.DryRun {
			continue
		}
		if err := writeFile(file, out); err != nil {
			errs = append(errs, err)
			continue
		}
		res.Files = append(res.Files, file)
	}
	return res, errors.Join(errs...)
}

// rewrite replaces the scalars of edits in src, keeping every other byte.
func rewrite(src []byte, edits []edit) ([]byte, error) {
	type span struct {
		start, end int
		text       string
	}
	lineStart := []int{0}
	for i, b := range src {
		if b == '\n' {
			lineStart = append(lineStart, i+1)
		}
	}
	var spans []span
	for _, e := range edits {
		if e.at == nil {
			return nil, errors.New("an entry has no digest scalar to rewrite")
		}
		start, end, err := locate(src, lineStart, e.at)
		if err != nil {
			return nil, err
		}
		spans = append(spans, span{start, end, render(e.value, e.at.Quote)})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start > spans[j].start })
	for i := 1; i < len(spans); i++ {
		if spans[i].end > spans[i-1].start {
			return nil, errors.New("overlapping edits")
		}
	}
	out := bytes.Clone(src)
	for _, s := range spans {
		out = append(out[:s.start], append([]byte(s.text), out[s.end:]...)...)
	}
	return out, nil
}

// locate finds the bytes of a scalar (quotes included) from its position,
// checking that they hold the value the parser read.
func locate(src []byte, lineStart []int, sc *scalar) (int, int, error) {
	want := render(sc.Value, sc.Quote)
	if sc.Line >= 1 && sc.Line <= len(lineStart) {
		ls := lineStart[sc.Line-1]
		le := len(src)
		if sc.Line < len(lineStart) {
			le = lineStart[sc.Line] - 1
		}
		line := src[ls:le]
		// The column counts characters: walk runes to the byte offset.
		off, col := 0, 1
		for col < sc.Column && off < len(line) {
			_, n := utf8.DecodeRune(line[off:])
			off += n
			col++
		}
		if bytes.HasPrefix(line[off:], []byte(want)) {
			return ls + off, ls + off + len(want), nil
		}
		// Fall back to the only occurrence on the line.
		if i := bytes.Index(line, []byte(want)); i >= 0 && bytes.Count(line, []byte(want)) == 1 {
			return ls + i, ls + i + len(want), nil
		}
	}
	return 0, 0, fmt.Errorf("line %d: cannot find %s to rewrite it (multi-line scalars are not supported)", sc.Line, want)
}

// render writes a value in a scalar's quoting style.
func render(v string, quote byte) string {
	switch quote {
	case '"':
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
	case '\'':
		return `'` + strings.ReplaceAll(v, `'`, `''`) + `'`
	}
	if !plainSafe(v) {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
	}
	return v
}

// plainSafe reports whether v can be written as a plain scalar unchanged.
func plainSafe(v string) bool {
	if v == "" || strings.ContainsAny(v[:1], "!&*-?[]{}|>'\"%@`#,") || strings.Contains(v, ": ") ||
		strings.Contains(v, " #") || strings.ContainsAny(v, "\n\t") || strings.TrimSpace(v) != v {
		return false
	}
	return true
}

// writeFile replaces path atomically, keeping its mode.
func writeFile(path string, b []byte) error {
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	return fsutil.WriteFileAtomic(path, b, mode)
}
