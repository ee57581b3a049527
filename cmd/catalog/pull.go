package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/artifacts"
	"github.com/guestcatalog/guestcatalog/framework/download"
)

func newPullCmd(a *app) *cobra.Command {
	var (
		arch     string
		reverify bool
	)
	cmd := &cobra.Command{
		Use:   "pull NAME|FILE|DIR...",
		Short: "Download and verify the images of templates into the cache",
		Long: `pull fetches the guest image of each named template (or alias) for the host's
architecture (or --arch) into the download cache, so that a later verify, or a
machine that gets a copy of the cache, needs no network.

A template lists its images in order of preference; pull takes the first that
downloads and verifies, as verify would: a failed download (server error,
digest mismatch) moves on to the next. Images built locally from Debian's
archive have nothing to download and are reported as such.

Every download is checked against the template's digest while it streams
and becomes visible in the cache only once verified; an interrupted download
resumes where it stopped, transient failures are retried, and several pulls
of the same image (even from other processes) download it once. Compressed
images (.xz, .gz, .zst, .bz2) are decompressed after verification.

Flags shared with every command: --cache-dir (the cache; env
GUESTCATALOG_CACHE), --offline (cache only: prints how to get a missing
image), --mirror PREFIX=MIRROR (download URLs starting with PREFIX from
MIRROR instead; repeatable; env GUESTCATALOG_MIRRORS, comma-separated; the
cache is still keyed by the upstream URL).

Progress goes to stderr (a bar on a terminal, a line every 5 s otherwise);
one line per image goes to stdout. The exit status is 1 if any template got
no image.`,
		Example: `  catalog pull debian-13-docker
  catalog pull --arch aarch64 ubuntu-24.04-k3s fedora-44-podman
  catalog pull --mirror https://cloud.debian.org/images/=http://mirror.lan/debian-images/ debian-13`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, names []string) error {
			extra := []download.Option{}
			if reverify {
				extra = append(extra, download.WithReverify())
			}
			cache, err := a.newDownloadCache(cmd.ErrOrStderr(), cmd.ErrOrStderr(), extra...)
			if err != nil {
				return err
			}
			if err := a.checkArch(arch); err != nil {
				return err
			}
			cat, resolved, err := a.templateArgs(cmd.Context(), names)
			if err != nil {
				return err
			}
			return runPull(cmd.Context(), cmd.OutOrStdout(), cache, cat, resolved, arch)
		},
	}
	cmd.Flags().StringVar(&arch, "arch", catalog.HostArch(), "architecture to pull images for (x86_64, aarch64)")
	cmd.Flags().BoolVar(&reverify, "reverify", false, "re-hash cached images instead of trusting their recorded size and time")
	return cmd
}

// imageSource is the slice of catalog.Template that pull needs.
type imageSource interface {
	Resolve(name string, opts ...catalog.ResolveOption) (*catalog.Template, error)
}

func runPull(ctx context.Context, out io.Writer, cache *download.Cache, cat imageSource, names []string, arch string) error {
	failed := 0
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		t, err := cat.Resolve(name)
		if err != nil {
			fmt.Fprintf(out, "%s: FAILED: %v\n", name, err)
			failed++
			continue
		}
		ok, err := pullTemplate(ctx, out, cache, t, arch)
		if err != nil {
			return err
		}
		if !ok {
			failed++
			continue
		}
		// The template's artifacts too: an offline verify needs them.
		files, err := artifacts.Fetch(ctx, t, arch, artifacts.WithFetcher(cache))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fmt.Fprintf(out, "%s (%s): FAILED: %v\n", t.Name, arch, err)
			failed++
			continue
		}
		for _, f := range files {
			fmt.Fprintf(out, "%s (%s): artifact %s %s (%s, digest from %s)\n", t.Name, arch, f.Name, f.Digest, f.Status, catalog.Sanitize(f.DigestFrom))
		}
	}
	if failed > 0 {
		return exitError{code: 1}
	}
	return nil
}

// pullTemplate fetches the first image of t for arch that works. It
// returns false when none did; an error only when ctx ended.
func pullTemplate(ctx context.Context, out io.Writer, cache *download.Cache, t *catalog.Template, arch string) (bool, error) {
	label := fmt.Sprintf("%s (%s)", t.Name, arch)
	images := t.ImagesFor(arch)
	if len(images) == 0 {
		fmt.Fprintf(out, "%s: FAILED: no image for %s (it has images for %v)\n", label, arch, t.Arches())
		return false, nil
	}
	var builds []string
	tried := 0
	for _, im := range images {
		if im.Location == "" {
			if im.Build != nil {
				builds = append(builds, "build:"+im.Build.Suite)
			}
			continue
		}
		tried++
		var opts []download.Option
		if im.Digest == "" && im.NoDigest != "" {
			opts = append(opts, download.WithoutDigest())
		}
		r, err := cache.Fetch(ctx, im.Location, im.Digest, opts...)
		if err != nil {
			if ctx.Err() != nil {
				return false, err
			}
			if errors.Is(err, download.ErrDigestMismatch) {
				// Evidence of a tampered or broken source: the template
				// ends here, never on another (maybe unpinned) entry.
				fmt.Fprintf(out, "%s: FAILED: %v\n", label, err)
				return false, nil
			}
			fmt.Fprintf(out, "%s: %v\n", label, err)
			continue
		}
		verified := "verified " + r.Digest
		if !r.Verified {
			verified = "no digest published (" + im.NoDigest + "), computed " + r.Digest
		}
		fmt.Fprintf(out, "%s: %s %s (%s, %s)\n  -> %s\n", label, r.Status, r.URL, download.FormatBytes(r.Size), verified, r.Path)
		return true, nil
	}
	switch {
	case tried == 0 && len(builds) > 0:
		fmt.Fprintf(out, "%s: nothing to download: its image is built locally (%s); catalog verify builds it\n", label, builds[0])
		return true, nil
	case len(builds) > 0:
		fmt.Fprintf(out, "%s: FAILED: no image could be downloaded (a local build, %s, remains: catalog verify uses it)\n", label, builds[0])
	default:
		fmt.Fprintf(out, "%s: FAILED: no image could be downloaded\n", label)
	}
	return false, nil
}
