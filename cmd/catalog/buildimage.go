package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/image"
	"github.com/guestcatalog/guestcatalog/framework/imagebuild"
)

func newBuildImageCmd(a *app) *cobra.Command {
	var (
		force  bool
		output outputOptions
		arch   string
	)
	cmd := &cobra.Command{
		Use:   "build-image NAME|FILE",
		Short: "Build a template's guest image locally from Debian's archive",
		Long: `build-image builds the local image of a template (or alias) for the host's
architecture: the template's first image entry with a build recipe, e.g.

  images:
    - arch: x86_64
      build:
        suite: trixie                          # the Debian release
        mirror: http://deb.debian.org/debian   # the default
        components: [main]                     # the default
        packages: [systemd, cloud-init, ...]   # installed besides the builder's own base
        bake: true                             # also install the template's packages steps

The build needs no loop device and never mounts the image: mmdebstrap
(--variant=minbase) bootstraps the packages into a directory, the builder
tunes it for a fast cloud-init boot under QEMU (NoCloud datasource only,
systemd-networkd, ed25519 host key only, no maintenance timers, root
filesystem by label), mkfs.ext4 -d turns the directory into a filesystem and
qemu-img converts it to qcow2. The kernel and initrd are copied beside the
disk for direct kernel boot. With bake: true, the packages of the template's
"packages" steps (the container engine) go into the image, so the guest
installs nothing and needs no network while provisioning.

Images are cached in <cache dir>/images/<key>/ (disk.qcow2, vmlinuz,
initrd.img, meta.json), where <cache dir> is --cache-dir, else
$GUESTCATALOG_CACHE, else $XDG_CACHE_HOME/guestcatalog, and <key> is a hash
of the suite, mirror, components, the full package list, the arch and the
builder's version. Building the same recipe again is a cache hit; --force
rebuilds. meta.json records the provenance: the recipe, every installed
package with its version, the kernel, sizes, phase timings and the tools
used. A build is written to a temporary directory and renamed into place,
so an interrupted build leaves no half-written entry; concurrent builds of
one recipe build it once.

Needs root and the Debian packages mmdebstrap, e2fsprogs and qemu-utils,
and Debian's archive (the recipe's mirror) over the network, even with
--offline (which only disables image downloads). Progress goes to stderr;
the paths of the result go to stdout.`,
		Example: `  catalog build-image debian-13-containerd
  catalog build-image --force debian-containerd
  catalog build-image --arch aarch64 debian-containerd
  catalog --cache-dir /srv/gc-cache build-image debian-13 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := output.get()
			if err != nil {
				return err
			}
			ts, err := a.argTemplates(cmd.Context(), args)
			if err != nil {
				return err
			}
			if len(ts) != 1 {
				return usagef("%s holds %d templates; build-image builds one", args[0], len(ts))
			}
			t := ts[0]
			recipe, err := buildRecipeFor(t, arch)
			if err != nil {
				return err
			}
			var extra []string
			if recipe.Bake {
				extra = image.BakedPackages(t, arch)
			}
			opts := []imagebuild.Option{imagebuild.WithOutput(cmd.ErrOrStderr()), imagebuild.WithForce(force), imagebuild.WithArch(arch)}
			opts = append(opts, imagebuild.WithCacheDir(a.cacheDir))
			if a.verbose {
				opts = append(opts, imagebuild.WithLogger(slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelDebug}))))
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "build-image: %s: %s for %s", t.Name, "build:"+recipe.Suite, arch)
			if len(extra) > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), ", baking %s", strings.Join(extra, " "))
			}
			fmt.Fprintln(cmd.ErrOrStderr())
			art, err := imagebuild.Build(cmd.Context(), *recipe, extra, opts...)
			if err != nil {
				return fmt.Errorf("building the image of %s: %w", t.Name, err)
			}
			return printBuiltImage(cmd.OutOrStdout(), t.Name, art, format == outputJSON)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "rebuild even if the cache has the image")
	cmd.Flags().StringVar(&arch, "arch", catalog.HostArch(),
		"build for this arch: x86_64 or aarch64 (a foreign one runs the guest's package scripts through qemu-user; see catalog doctor)")
	addOutputFlag(cmd, &output, true, outputTable, outputJSON)
	return cmd
}

// buildRecipeFor is the first build recipe of t for arch.
func buildRecipeFor(t *catalog.Template, arch string) (*catalog.BuildRecipe, error) {
	images := t.ImagesFor(arch)
	for _, im := range images {
		if im.Build != nil {
			return im.Build, nil
		}
	}
	if len(images) == 0 {
		return nil, fmt.Errorf("template %s has no image for %s", t.Name, arch)
	}
	return nil, fmt.Errorf("template %s has no local build recipe for %s: its images are downloaded (catalog pull %s)", t.Name, arch, t.Name)
}

type builtImageJSON struct {
	Template    string   `json:"template"`
	Source      string   `json:"source"`
	Key         string   `json:"key"`
	Status      string   `json:"status"`
	Disk        string   `json:"disk"`
	Format      string   `json:"format"`
	Kernel      string   `json:"kernel"`
	Initrd      string   `json:"initrd"`
	Append      string   `json:"append"`
	Digest      string   `json:"digest"`
	VirtualSize int64    `json:"virtualSize"`
	DiskSize    int64    `json:"diskSize"`
	KernelVer   string   `json:"kernelVersion"`
	Packages    int      `json:"packages"`
	Baked       []string `json:"baked,omitempty"`
	Meta        string   `json:"meta"`
}

func printBuiltImage(w io.Writer, name string, a *imagebuild.Artifact, asJSON bool) error {
	m := a.Meta
	j := builtImageJSON{
		Template: name, Source: m.Plan.Source(), Key: a.Key, Status: string(a.Status), Disk: a.Disk, Format: image.FormatQcow2,
		Kernel: a.Kernel, Initrd: a.Initrd, Append: a.Append, Digest: a.Digest, VirtualSize: a.VirtualSize,
		DiskSize: m.Sizes.Disk, KernelVer: m.Kernel, Packages: len(m.Installed), Baked: m.Plan.Extra,
		Meta: filepath.Join(a.Dir, imagebuild.MetaFile),
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(j)
	}
	status := j.Status
	for _, p := range m.Phases {
		if p.Name == "total" && a.Status == imagebuild.StatusBuilt {
			status = fmt.Sprintf("built in %.1fs", p.Seconds)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "template\t%s\n", j.Template)
	fmt.Fprintf(tw, "source\t%s (key %s, %s)\n", j.Source, j.Key, status)
	fmt.Fprintf(tw, "disk\t%s (qcow2, %s, virtual %s)\n", j.Disk, imagebuild.HumanBytes(j.DiskSize), imagebuild.HumanBytes(j.VirtualSize))
	fmt.Fprintf(tw, "kernel\t%s (%s)\n", j.Kernel, j.KernelVer)
	fmt.Fprintf(tw, "initrd\t%s\n", j.Initrd)
	fmt.Fprintf(tw, "append\t%s\n", j.Append)
	fmt.Fprintf(tw, "digest\t%s\n", j.Digest)
	if len(j.Baked) > 0 {
		fmt.Fprintf(tw, "baked\t%s\n", strings.Join(j.Baked, " "))
	}
	fmt.Fprintf(tw, "packages\t%d installed (listed in meta.json)\n", j.Packages)
	fmt.Fprintf(tw, "meta\t%s\n", j.Meta)
	return tw.Flush()
}
