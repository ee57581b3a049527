package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/ci/freshness"
	"github.com/guestcatalog/guestcatalog/framework/config"
)

// imagesOptions are the flags shared by `catalog images` subcommands.
type imagesOptions struct {
	baseURL string
	timeout time.Duration
}

// defaultTemplatesDir is where the image fragments live in the repository.
const defaultTemplatesDir = "catalog/templates"

func newImagesCmd(a *app) *cobra.Command {
	var o imagesOptions
	cmd := &cobra.Command{
		Use:   "images",
		Short: "Check and update the pinned upstream images and artifacts",
		Long: `images keeps the catalog's upstream cloud images fresh: check asks upstream
whether every pinned URL is still served with the pinned digest; update moves
the pins to the newest upstream release. Both need the network.

They cover the engines' artifacts (artifacts: in templates) too: check asks
whether each artifact URL is served and what its digest rests on (pinned, or
the release's checksum file); update turns every checksumFile entry into a
pinned digest taken from that file.

Where each distro publishes checksums and releases:
  ubuntu     SHA256SUMS beside the image; simplestreams
             releases/streams/v1/com.ubuntu.cloud:released:download.json
  debian     SHA512SUMS beside the image; the suite's dated directories
  fedora     Fedora-Cloud-<release>-<respin>-<arch>-CHECKSUM (PGP-signed)
  rocky      CHECKSUM beside the image; <major>.<minor>/ directories
  almalinux  CHECKSUM beside the image; <major>.<minor>/ directories
  alpine     <image>.sha512; v<branch>/releases/<arch>/latest-releases.yaml
  archlinux  <image>.SHA256; images/latest/ and images/v<version>/

--mirror PREFIX=MIRROR (global) and --base-url fetch from elsewhere; the URLs
written into the templates stay the upstream ones.`,
		Example: `  catalog images check
  catalog images update --dry-run
  catalog images check --base-url http://127.0.0.1:8080   # a mirror tree laid out as HOST/PATH`,
		Args: cobra.NoArgs,
	}
	groupCmd(cmd)
	pf := cmd.PersistentFlags()
	baseURL, _ := a.env.Lookup(config.EnvImagesBaseURL)
	pf.StringVar(&o.baseURL, "base-url", baseURL,
		"fetch https://HOST/PATH as BASE/HOST/PATH (a local mirror tree; env GUESTCATALOG_IMAGES_BASE_URL)")
	pf.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up after this long")
	cmd.AddCommand(newImagesCheckCmd(a, &o), newImagesUpdateCmd(a, &o))
	return cmd
}

func newImagesCheckCmd(a *app, o *imagesOptions) *cobra.Command {
	var (
		output      outputOptions
		asMarkdown  bool
		concurrency int
		dir         string
	)
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check that pinned image URLs are served with their pinned digest",
		Long: `check asks upstream, for every image URL of the catalog (once per URL):

  URL     is it still served? HEAD, following redirects; a server that refuses
          HEAD is asked for one byte with a ranged GET. ok, dead (4xx) or
          error (no answer, 5xx after retries).
  DIGEST  does the checksum file the distro publishes still list the pinned
          digest? ok, changed, missing (the checksum file is gone or does
          not list the image), unpublished (no checksum file is known for
          that host), unpinned (the entry has noDigest: a rolling fallback).

It prints a table, then a line for each problem. The exit code is 1 when a URL
is dead or unreachable or a digest changed; missing, unpublished and unpinned
are warnings.

By default it checks the shipped catalog (the image fragments, and templates
that carry images themselves); --dir checks the YAML files under a directory.`,
		Example: `  catalog images check
  catalog images check -o json | jq '.results[] | select(.digestStatus == "changed")'
  catalog images check --markdown >> "$GITHUB_STEP_SUMMARY"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output.legacy && asMarkdown {
				return errors.New("--json and --markdown: choose one")
			}
			format, err := output.get()
			if err != nil {
				return err
			}
			if asMarkdown {
				if format != outputTable && format != "markdown" {
					return usagef("--output %s and --markdown: choose one", format)
				}
				format = "markdown"
			}
			return a.runImagesCheck(cmd.Context(), cmd.OutOrStdout(), *o, dir, format, concurrency)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "check the YAML files under this directory instead of the shipped catalog")
	addOutputFlag(cmd, &output, true, outputTable, outputJSON, "markdown")
	cmd.Flags().BoolVar(&asMarkdown, "markdown", false, "same as --output markdown: a Markdown table (for $GITHUB_STEP_SUMMARY)")
	cmd.Flags().IntVar(&concurrency, "concurrency", 8, "images checked at once")
	return cmd
}

func newImagesUpdateCmd(a *app, o *imagesOptions) *cobra.Command {
	var (
		dryRun  bool
		distros []string
		output  outputOptions
		dir     string
	)
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Move pinned images to the newest upstream release",
		Long: `update reads each distro's release metadata and rewrites, in the template
files, the location and digest of every pinned image entry for which upstream
has a newer release of the same line (same release, variant and arch): a new
Ubuntu serial, Debian dated build, Fedora respin, Rocky/AlmaLinux minor release
or build, Alpine point release or respin, Arch Linux build.

Only those two values change in the files: comments, key order, quoting and
flow style stay byte for byte. Entries without a digest (rolling fallbacks)
and URLs of hosts without known release metadata are left alone. A second run
right after changes nothing.

It edits the YAML under --dir (default catalog/templates, from the repository
root). Review the diff, then run ` + "`catalog images check`" + ` and verify the templates.`,
		Example: `  catalog images update --dry-run
  catalog images update --distro debian --distro ubuntu
  catalog images update --dir catalog/templates/images`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			format, err := output.get()
			if err != nil {
				return err
			}
			return a.runImagesUpdate(cmd.Context(), cmd.OutOrStdout(), *o, dir, freshness.UpdateOptions{DryRun: dryRun, Distros: distros}, format == outputJSON)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", defaultTemplatesDir, "the template files to edit")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the changes, write nothing")
	cmd.Flags().StringSliceVar(&distros, "distro", nil,
		"only these distros (repeatable or comma-separated): "+strings.Join(freshness.Distros(), ", "))
	addOutputFlag(cmd, &output, true, outputTable, outputJSON)
	return cmd
}

// errImagesOffline explains why the images commands refuse --offline.
var errImagesOffline = errors.New("catalog images asks upstream servers (checksums, release metadata) and cannot run offline: " +
	"drop --offline / GUESTCATALOG_OFFLINE=1, or point --mirror/--base-url at a reachable mirror")

func (a *app) imagesClient(o imagesOptions) (*freshness.Client, error) {
	if a.offline {
		return nil, errImagesOffline
	}
	mirrors, err := freshness.ParseMirrors(a.allMirrors())
	if err != nil {
		return nil, err
	}
	c := &freshness.Client{Mirrors: mirrors, BaseURL: o.baseURL}
	if a.verbose {
		c.Logger = slog.New(slog.NewTextHandler(a.streams.ErrOut, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return c, nil
}

func withImagesTimeout(ctx context.Context, o imagesOptions) (context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.timeout > 0 {
		return context.WithTimeout(ctx, o.timeout)
	}
	return context.WithCancel(ctx)
}

// catalogImages lists the image entries of the shipped catalog: those of
// the fragments (labelled like the fragment, debian-13) and of templates
// that carry their own.
func (a *app) catalogImages(ctx context.Context) ([]freshness.Image, error) {
	c, err := a.loadCatalog(ctx)
	if err != nil {
		return nil, err
	}
	var ims []freshness.Image
	for _, f := range c.Fragments() {
		for _, im := range freshness.FromTemplates([]*catalog.Template{f}) {
			im.Name = strings.TrimPrefix(f.Name, "images/")
			im.File = f.Source
			ims = append(ims, im)
		}
	}
	ims = append(ims, freshness.FromTemplates(c.Templates())...)
	return freshness.Dedupe(ims), nil
}

func (a *app) runImagesCheck(ctx context.Context, out io.Writer, o imagesOptions, dir, format string, concurrency int) error {
	client, err := a.imagesClient(o)
	if err != nil {
		return err
	}
	var ims []freshness.Image
	var arts []artifactSource
	if dir != "" {
		ims, err = freshness.ScanDir(dir)
		if err == nil {
			arts, err = scanArtifactFiles(dir)
		}
	} else {
		ims, err = a.catalogImages(ctx)
		if err == nil {
			arts, err = a.catalogArtifacts(ctx)
		}
	}
	if err != nil {
		return err
	}
	if len(ims) == 0 && len(arts) == 0 {
		return fmt.Errorf("no image URLs found in %s", orDefault(dir, "the shipped catalog"))
	}
	ctx, cancel := withImagesTimeout(ctx, o)
	defer cancel()
	results := freshness.Check(ctx, client, ims, freshness.CheckOptions{Concurrency: concurrency})
	artResults := checkArtifacts(ctx, client, arts)
	artFailed := false
	for _, r := range artResults {
		artFailed = artFailed || r.failed()
	}
	switch format {
	case "json":
		// The images' document, with the artifacts beside its results.
		var buf bytes.Buffer
		if err = freshness.WriteJSON(&buf, results); err == nil {
			var doc map[string]any
			if err = json.Unmarshal(buf.Bytes(), &doc); err == nil {
				if artResults == nil {
					artResults = []artifactResult{}
				}
				doc["artifacts"] = artResults
				doc["failed"] = doc["failed"] == true || artFailed
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				err = enc.Encode(doc)
			}
		}
	case "markdown":
		if len(ims) > 0 {
			err = freshness.WriteMarkdown(out, results)
		}
		if err == nil && len(artResults) > 0 {
			err = writeArtifactMarkdown(out, artResults)
		}
	default:
		if len(ims) > 0 {
			err = freshness.WriteTable(out, results)
		}
		if err == nil && len(artResults) > 0 {
			if len(ims) > 0 {
				fmt.Fprintln(out)
			}
			err = writeArtifactTable(out, artResults)
		}
	}
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("images check: %w", ctx.Err())
	}
	if freshness.Summarize(results).Failed > 0 || artFailed {
		return exitError{code: 1}
	}
	return nil
}

func (a *app) runImagesUpdate(ctx context.Context, out io.Writer, o imagesOptions, dir string, uo freshness.UpdateOptions, asJSON bool) error {
	client, err := a.imagesClient(o)
	if err != nil {
		return err
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("template directory %s not found: run from the repository root or pass --dir", dir)
	}
	uo.Logger = client.Logger
	ctx, cancel := withImagesTimeout(ctx, o)
	defer cancel()
	res, updateErr := freshness.Update(ctx, client, dir, uo)
	if res == nil {
		return updateErr
	}
	// Artifacts: every checksumFile source becomes a pinned digest (not
	// with --distro, which picks images).
	var pins []artifactPin
	var skips []artifactSkip
	var artErr error
	if len(uo.Distros) == 0 {
		pins, skips, artErr = updateArtifacts(ctx, client, dir, uo.DryRun)
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		doc := struct {
			*freshness.UpdateResult
			Artifacts        []artifactPin  `json:"artifacts"`
			SkippedArtifacts []artifactSkip `json:"skippedArtifacts,omitempty"`
		}{res, pins, skips}
		if doc.Artifacts == nil {
			doc.Artifacts = []artifactPin{}
		}
		if err := enc.Encode(doc); err != nil {
			return err
		}
	} else {
		printUpdate(out, res, uo.DryRun)
		if len(pins)+len(skips) > 0 {
			printArtifactPins(out, pins, skips, uo.DryRun)
		}
	}
	if updateErr != nil {
		return fmt.Errorf("some images could not be updated:\n%w", updateErr)
	}
	if artErr != nil {
		return fmt.Errorf("some artifacts could not be pinned:\n%w", artErr)
	}
	return nil
}

func printUpdate(out io.Writer, res *freshness.UpdateResult, dryRun bool) {
	for _, ch := range res.Changes {
		file := ch.File
		if rel, err := filepath.Rel(".", ch.File); err == nil && !strings.HasPrefix(rel, "..") {
			file = rel
		}
		fmt.Fprintf(out, "%s:%d  %s %s\n", file, ch.Line, ch.Image, ch.Arch)
		if ch.OldURL != ch.NewURL {
			fmt.Fprintf(out, "  - %s\n  + %s\n", ch.OldURL, ch.NewURL)
		}
		fmt.Fprintf(out, "  digest %s -> %s (from %s)\n", ch.OldDigest, ch.NewDigest, ch.From)
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(out, "skipped %s %s (%s): %s\n", s.Image, s.Arch, s.URL, s.Reason)
	}
	verb := "updated"
	if dryRun {
		verb = "would be updated (dry run: nothing written)"
	}
	fmt.Fprintf(out, "%d image entries %s, %d already current, %d skipped\n", len(res.Changes), verb, res.Current, len(res.Skipped))
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
