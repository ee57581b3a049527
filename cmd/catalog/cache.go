package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/guestcatalog/guestcatalog/framework/caches"
	"github.com/guestcatalog/guestcatalog/framework/download"
)

// newDownloadCache builds the image download cache from the global flags:
// --cache-dir (else $GUESTCATALOG_CACHE, else $XDG_CACHE_HOME/guestcatalog),
// --offline, --mirror after $GUESTCATALOG_MIRRORS (a flag wins over the
// environment for the same prefix), --verbose logging to stderr. Progress
// goes to progress (a bar on a terminal, lines otherwise); nil is silent.
func (a *app) newDownloadCache(stderr, progress io.Writer, extra ...download.Option) (*download.Cache, error) {
	mirrors, err := download.ParseMirrors(a.allMirrors()...)
	if err != nil {
		return nil, usagef("--mirror: %w", err)
	}
	opts := []download.Option{download.WithMirrors(mirrors...), download.WithCacheDir(a.cacheDir)}
	if a.offline {
		opts = append(opts, download.WithOffline())
	}
	if progress != nil {
		opts = append(opts, download.WithProgress(progress))
	}
	if a.verbose {
		opts = append(opts, download.WithLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	return download.New(append(opts, extra...)...)
}

func newCacheCmd(a *app) *cobra.Command {
	cacheCmd := &cobra.Command{
		Use:   "cache",
		Short: "Inspect and clean the caches: downloads, built images, saved guests",
		Long: `The download cache holds the guest images fetched by ` + "`catalog pull`" + ` and
` + "`catalog verify`" + `, each verified against its template's digest. It lives in
<cache dir>/downloads, where <cache dir> is --cache-dir, else $GUESTCATALOG_CACHE,
else $XDG_CACHE_HOME/guestcatalog (~/.cache/guestcatalog).

Each URL has a directory named by a hash of the URL (the upstream URL even when
a --mirror served it) holding the verified file (data), its decompressed image
for .xz/.gz/.zst/.bz2 URLs (data.decompressed), meta.json (URL, digest, size,
times) and, after an interrupted download, data.part, which the next pull
resumes. A cache hit checks the size and modification time recorded when the
file was verified; ` + "`catalog cache verify`" + ` re-hashes everything.

To work offline (--offline), fill a cache on a connected machine with
` + "`catalog pull`" + ` and copy the cache directory (rsync -a keeps the times, so
nothing needs re-hashing; a plain copy is re-hashed once on first use).`,
	}
	groupCmd(cacheCmd)
	cacheCmd.AddCommand(newCacheLsCmd(a), newCachePruneCmd(a), newCacheVerifyCmd(a), newCacheDirCmd(a))
	return cacheCmd
}

func newCacheDirCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "dir",
		Short: "Print the download cache directory",
		Example: `  catalog cache dir
  catalog --cache-dir /srv/guestcatalog cache dir`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.newDownloadCache(cmd.ErrOrStderr(), nil)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), c.Dir())
			return nil
		},
	}
}

func newCacheLsCmd(a *app) *cobra.Command {
	var (
		o     outputOptions
		kinds []string
	)
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List cached downloads, built images and saved guests",
		Long: `ls lists the cache entries of every kind (--kind to choose): downloads (verified
images, <cache dir>/downloads), images (built locally, <cache dir>/images),
provisioned (saved provisioned guests, <cache dir>/provisioned) and
artifact-drive (read-only ISOs of a template's vendor artifacts, written again
from the verified downloads when missing, <cache dir>/artifact-drives), each kind most
recently used first: kind, name (URL, build recipe, template), size on disk,
digest or detail, when it was last used, and the file a run uses. An
interrupted download shows as "partial".

With --output json (or yaml) it prints an array of objects with the keys kind, name, dir, path,
diskUsage, lastUsed, detail and, for downloads, download (key, url, source,
digest, verified, size, path, decompressed, fetchedAt, lastUsed, complete,
partialSize, diskUsage).`,
		Example: `  catalog cache ls
  catalog cache ls --kind provisioned
  catalog cache ls -o json | jq -r '.[] | select(.kind == "download") | .download.url'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			format, err := o.get()
			if err != nil {
				return err
			}
			c, ks, err := a.openCaches(cmd, kinds)
			if err != nil {
				return err
			}
			entries, err := c.List(ks...)
			if err != nil {
				return err
			}
			return printCacheList(cmd.OutOrStdout(), entries, format, time.Now())
		},
	}
	addOutputFlag(cmd, &o, true)
	cmd.Flags().StringSliceVar(&kinds, "kind", nil, "only these kinds: download, image, provisioned, artifact-drive (default all)")
	return cmd
}

// openCaches opens every cache under the cache root of the global flags
// (the download cache's parent) and parses --kind.
func (a *app) openCaches(cmd *cobra.Command, kinds []string) (*caches.Caches, []caches.Kind, error) {
	ks, err := caches.ParseKinds(kinds)
	if err != nil {
		return nil, nil, usagef("--kind: %w", err)
	}
	if a.cacheDir == "" {
		return nil, nil, usagef("no cache directory (--cache-dir or $GUESTCATALOG_CACHE)")
	}
	c, err := caches.Open(a.cacheDir)
	return c, ks, err
}

func printCacheList(w io.Writer, entries []caches.Entry, format string, now time.Time) error {
	if format != outputTable {
		if entries == nil {
			entries = []caches.Entry{}
		}
		return writeData(w, format, entries)
	}
	if len(entries) == 0 {
		fmt.Fprintln(w, "the cache is empty")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tSIZE\tDIGEST\tLAST USED\tPATH")
	var total int64
	for _, e := range entries {
		total += e.DiskUsage
		size, detail, path := download.FormatBytes(e.DiskUsage), shortDigest(e.Detail), dashIfEmpty(e.Path)
		if d := e.Download; d != nil {
			size = download.FormatBytes(d.Size)
			if !d.Verified && d.Complete {
				detail += " (no digest given)"
			}
			if !d.Complete {
				size, detail, path = "partial "+download.FormatBytes(d.PartialSize), "-", "-"
			}
		} else if e.Kind == caches.KindProvisioned {
			detail = e.Detail
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Kind, e.Name, size, detail, ago(now, e.LastUsed), path)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d entries, %s on disk\n", len(entries), download.FormatBytes(total))
	return nil
}

// shortDigest keeps the algorithm and 12 hex digits.
func shortDigest(d string) string {
	algo, hx, ok := strings.Cut(d, ":")
	if !ok || len(hx) <= 12 {
		return dashIfEmpty(d)
	}
	return algo + ":" + hx[:12] + "…"
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd ago", int(d.Hours()/24))
	}
}

func newCachePruneCmd(a *app) *cobra.Command {
	var (
		olderThan time.Duration
		all       bool
		dryRun    bool
		kinds     []string
	)
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Remove cache entries not used recently",
		Long: `prune removes the cache entries (downloads, built images, saved guests; --kind
to choose) not used for --older-than (default 720h, 30 days), interrupted
downloads as old, and temporary files left by a crash. --all removes every
entry. An entry locked by a running pull, build or verify is kept and
reported. A removed image that a leftover qcow2 overlay uses as its backing
file breaks that overlay (saved guests on it are discarded when next looked
up): prune with a margin.`,
		Example: `  catalog cache prune                              # unused for 30 days
  catalog cache prune --older-than 168h            # unused for a week
  catalog cache prune --kind provisioned --all     # every saved guest
  catalog cache prune --all --dry-run              # what --all would remove`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !all && olderThan <= 0 {
				return usagef("--older-than must be positive (or use --all)")
			}
			c, ks, err := a.openCaches(cmd, kinds)
			if err != nil {
				return err
			}
			rep, err := c.Prune(cmd.Context(), caches.PruneOptions{Kinds: ks, OlderThan: olderThan, All: all, DryRun: dryRun})
			out := cmd.OutOrStdout()
			verb := "removed"
			if dryRun {
				verb = "would remove"
			}
			for _, e := range rep.Removed {
				fmt.Fprintf(out, "%s %s %s (%s)\n", verb, e.Kind, dashIfEmpty(e.Name), download.FormatBytes(e.DiskUsage))
			}
			for _, e := range rep.InUse {
				fmt.Fprintf(out, "kept %s %s: in use\n", e.Kind, dashIfEmpty(e.Name))
			}
			fmt.Fprintf(out, "%s %d entries, %s\n", verb, len(rep.Removed), download.FormatBytes(rep.Freed))
			return err
		},
	}
	cmd.Flags().DurationVar(&olderThan, "older-than", 720*time.Hour, "remove entries not used for this long")
	cmd.Flags().BoolVar(&all, "all", false, "remove every entry not in use")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "say what would be removed, remove nothing")
	cmd.Flags().StringSliceVar(&kinds, "kind", nil, "only these kinds: download, image, provisioned, artifact-drive (default all)")
	return cmd
}

func newCacheVerifyCmd(a *app) *cobra.Command {
	var kinds []string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check every cache entry against what was recorded",
		Long: `verify re-reads every cached download and checks it against the digest recorded
when it was downloaded (and each decompressed image against the hash taken when
it was decompressed); re-hashes every built image's disk against the digest
recorded when it was built and inspects it (a standalone qcow2); and checks
that every saved guest's disk is a qcow2 on its base image holding its
snapshot. A bad entry is removed, so the next run fetches, builds or
provisions it again; the exit status is 1 if any was. It never uses the
network. --kind chooses the kinds.`,
		Example: `  catalog cache verify
  catalog cache verify --kind download,image`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ks, err := a.openCaches(cmd, kinds)
			if err != nil {
				return err
			}
			reps, err := c.Verify(cmd.Context(), ks...)
			if err != nil {
				return err
			}
			out, bad := cmd.OutOrStdout(), 0
			for _, r := range reps {
				if r.Err != nil {
					bad++
					fmt.Fprintf(out, "CORRUPT %s %s: %v\n", r.Entry.Kind, r.Entry.Name, r.Err)
					continue
				}
				fmt.Fprintf(out, "ok      %s %s (%s)\n", r.Entry.Kind, r.Entry.Name, shortDigest(r.Entry.Detail))
			}
			fmt.Fprintf(out, "%d verified, %d corrupt (removed)\n", len(reps)-bad, bad)
			if bad > 0 {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&kinds, "kind", nil, "only these kinds: download, image, provisioned, artifact-drive (default all)")
	return cmd
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
