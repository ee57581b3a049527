package freshness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
)

// DigestState says how the pinned digest compares with what upstream
// publishes.
type DigestState string

// Digest states. Changed fails a check; the others are information.
const (
	DigestOK          DigestState = "ok"          // the published checksum equals the pinned digest
	DigestChanged     DigestState = "changed"     // upstream publishes another digest for the URL
	DigestMissing     DigestState = "missing"     // the checksum file is gone, or does not list the image
	DigestUnpublished DigestState = "unpublished" // no checksum file is known for this upstream
	DigestUnpinned    DigestState = "unpinned"    // the entry has no digest (noDigest)
	DigestError       DigestState = "error"       // the checksum file could not be fetched
)

// Result is the verdict on one image URL.
type Result struct {
	Image
	Distro string      `json:"distro,omitempty"`
	URL    ProbeResult `json:"urlStatus"`
	// DigestState and the published digest, with the file it came from.
	DigestState DigestState `json:"digestStatus"`
	Published   string      `json:"published,omitempty"`
	Checksums   string      `json:"checksums,omitempty"`
	Detail      string      `json:"detail,omitempty"`
}

// Failed reports whether the result fails a check: a URL that is not served
// (dead, or no answer) or a digest that changed.
func (r Result) Failed() bool { return r.URL.State != URLOK || r.DigestState == DigestChanged }

// Warned reports whether the result deserves a look without failing.
func (r Result) Warned() bool {
	return !r.Failed() && (r.DigestState != DigestOK)
}

// CheckOptions tune Check.
type CheckOptions struct {
	// Concurrency is how many images are checked at once (default 8).
	Concurrency int
}

// Check probes every image URL (once per URL and digest) and compares its
// pinned digest with the checksum upstream publishes. Results are sorted by
// image, arch and URL.
func Check(ctx context.Context, c *Client, images []Image, opts CheckOptions) []Result {
	images = Dedupe(images)
	n := opts.Concurrency
	if n <= 0 {
		n = 8
	}
	results := make([]Result, len(images))
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i, im := range images {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] = checkOne(ctx, c, im)
		}()
	}
	wg.Wait()
	sort.SliceStable(results, func(i, j int) bool {
		a, b := results[i], results[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Arch != b.Arch {
			return a.Arch > b.Arch // x86_64 before aarch64
		}
		return a.Location < b.Location
	})
	return results
}

func checkOne(ctx context.Context, c *Client, im Image) Result {
	r := Result{Image: im, Distro: DistroOf(im.Location)}
	r.URL = c.Probe(ctx, im.Location)
	if !im.Pinned() {
		r.DigestState = DigestUnpinned
		r.Detail = im.NoDigest
		return r
	}
	up := upstreamFor(im.Location)
	if up == nil {
		r.DigestState = DigestUnpublished
		r.Detail = "no checksum file known for " + hostOf(im.Location)
		return r
	}
	algo, pinned, ok := strings.Cut(im.Digest, ":")
	if !ok {
		r.DigestState = DigestError
		r.Detail = fmt.Sprintf("pinned digest %q is not <algo>:<hex>", im.Digest)
		return r
	}
	r.Checksums = up.checksumURL(im.Location)
	b, err := c.Get(ctx, r.Checksums)
	switch {
	case errors.Is(err, ErrNotFound):
		r.DigestState = DigestMissing
		r.Detail = "checksum file not found: " + r.Checksums
		return r
	case err != nil:
		r.DigestState = DigestError
		r.Detail = err.Error()
		return r
	}
	sums := ParseSums(b)
	file := path.Base(im.Location)
	h, ok := sums.Lookup(file, algo)
	if !ok {
		r.DigestState = DigestMissing
		r.Detail = fmt.Sprintf("%s does not list %s", path.Base(r.Checksums), file)
		if algos := sums.Algos(file); len(algos) > 0 {
			r.Detail += fmt.Sprintf(" with %s (only %s)", algo, strings.Join(algos, ", "))
		}
		return r
	}
	r.Published = algo + ":" + h
	if strings.EqualFold(h, pinned) {
		r.DigestState = DigestOK
	} else {
		r.DigestState = DigestChanged
		r.Detail = "upstream publishes " + short(r.Published) + ", the catalog pins " + short(im.Digest)
	}
	return r
}

func hostOf(u string) string {
	rest, ok := strings.CutPrefix(u, "https://")
	if !ok {
		rest = strings.TrimPrefix(u, "http://")
	}
	host, _, _ := strings.Cut(rest, "/")
	return host
}

func short(d string) string {
	algo, h, ok := strings.Cut(d, ":")
	if !ok || len(h) <= 16 {
		return d
	}
	return algo + ":" + h[:16] + "…"
}

// Summary counts results.
type Summary struct {
	Images, OK, Failed, Warned int
}

// Summarize counts results.
func Summarize(rs []Result) Summary {
	s := Summary{Images: len(rs)}
	for _, r := range rs {
		switch {
		case r.Failed():
			s.Failed++
		case r.Warned():
			s.Warned++
		default:
			s.OK++
		}
	}
	return s
}

func urlCell(p ProbeResult) string {
	switch {
	case p.Status != 0 && p.Method == "GET":
		return fmt.Sprintf("%s (%d, ranged GET)", p.State, p.Status)
	case p.Status != 0:
		return fmt.Sprintf("%s (%d)", p.State, p.Status)
	}
	return string(p.State)
}

// WriteTable writes results as an aligned table, then one line per problem.
func WriteTable(w io.Writer, rs []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tARCH\tURL\tDIGEST\tFILE")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.Arch, urlCell(r.URL), r.DigestState, path.Base(r.Location))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var notes []string
	for _, r := range rs {
		if !r.Failed() && !r.Warned() {
			continue
		}
		level := "warning"
		if r.Failed() {
			level = "FAIL"
		}
		var why []string
		if r.URL.State != URLOK {
			msg := "URL " + urlCell(r.URL)
			if r.URL.Err != "" {
				msg += ": " + r.URL.Err
			}
			why = append(why, msg)
		}
		if r.DigestState != DigestOK {
			d := "digest " + string(r.DigestState)
			if r.Detail != "" {
				d += ": " + r.Detail
			}
			why = append(why, d)
		}
		where := r.Location
		switch {
		case r.File != "" && r.Line > 0:
			where = fmt.Sprintf("%s:%d", r.File, r.Line)
		case r.File != "":
			where = r.File + ": " + path.Base(r.Location)
		}
		notes = append(notes, fmt.Sprintf("%s %s %s (%s): %s", level, r.Name, r.Arch, where, strings.Join(why, "; ")))
	}
	s := Summarize(rs)
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
	_, err := fmt.Fprintf(w, "\n%d image URLs: %d ok, %d failed, %d warnings\n", s.Images, s.OK, s.Failed, s.Warned)
	return err
}

// WriteMarkdown writes results as a Markdown table (for $GITHUB_STEP_SUMMARY).
func WriteMarkdown(w io.Writer, rs []Result) error {
	s := Summarize(rs)
	var b strings.Builder
	fmt.Fprintf(&b, "## Upstream images\n\n**%d ok**, **%d failed**, **%d warnings** (of %d image URLs)\n\n", s.OK, s.Failed, s.Warned, s.Images)
	b.WriteString("| | Image | Arch | URL | Digest | File | Detail |\n|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		icon := "✅"
		if r.Failed() {
			icon = "❌"
		} else if r.Warned() {
			icon = "⚠️"
		}
		detail := r.Detail
		if r.URL.Err != "" {
			detail = strings.TrimSpace(r.URL.Err + " " + detail)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | [`%s`](%s) | %s |\n", icon, md(r.Name), md(r.Arch), md(urlCell(r.URL)),
			r.DigestState, md(path.Base(r.Location)), r.Location, md(detail))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func md(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(s)
}

// WriteJSON writes results as JSON: {"results": [...], "failed": bool}.
func WriteJSON(w io.Writer, rs []Result) error {
	s := Summarize(rs)
	out := struct {
		Results []Result `json:"results"`
		Summary Summary  `json:"summary"`
		Failed  bool     `json:"failed"`
	}{Results: rs, Summary: s, Failed: s.Failed > 0}
	if out.Results == nil {
		out.Results = []Result{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
