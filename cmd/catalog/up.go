package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework"
	"github.com/guestcatalog/guestcatalog/framework/artifacts"
	"github.com/guestcatalog/guestcatalog/framework/config"
	"github.com/guestcatalog/guestcatalog/framework/image"
	"github.com/guestcatalog/guestcatalog/framework/instance"
	"github.com/guestcatalog/guestcatalog/framework/intervals"
)

// guestOptions are the flags of the commands that start a template's
// guest (up, run).
type guestOptions struct {
	arch          string
	accel         string
	sets          []string
	mounts        []string
	allowUnpinned bool
}

// allowUnpinnedUsage is --allow-unpinned's help, shared by verify, up and run.
const allowUnpinnedUsage = "run templates whose guest downloads what the catalog does not pin (engine.unpinned: installer scripts, git clones, images by tag); without it they are SKIPPED (env GUESTCATALOG_ALLOW_UNPINNED)"

// mountFlagUsage is --mount's help, shared by up and run.
const mountFlagUsage = `share a host directory with the guest over 9p, HOST:GUEST[:ro] (repeatable, at most 8): HOST an existing directory, GUEST an absolute path outside the guest's system directories; :ro is enforced by QEMU on the host side. At a guest path the template mounts, it replaces that mount's host directory. The guest kernel needs 9p (debian-13-sandbox has it)`

// parseMounts checks every --mount value before anything starts: a bad
// one is a usage error (exit 2) naming the value.
func (o *guestOptions) parseMounts() ([]instance.MountSpec, error) {
	ms, err := instance.ParseMounts(o.mounts)
	if err != nil {
		return nil, usageError{err}
	}
	return ms, nil
}

func (o *guestOptions) flags(cmd *cobra.Command, env config.Config) {
	f := cmd.Flags()
	f.StringVar(&o.arch, "arch", env.Arch, "guest architecture: x86_64 or aarch64 (env GUESTCATALOG_ARCH)")
	f.StringVar(&o.accel, "accel", env.Accel,
		"accelerator for provisioning when the template has no saved guest yet: auto, kvm or tcg (a saved guest resumes under the one it was saved with; env GUESTCATALOG_ACCEL)")
	f.StringArrayVar(&o.sets, "set", nil,
		"override a param the template declares, NAME=VALUE (repeatable)")
	f.StringArrayVar(&o.mounts, "mount", nil, mountFlagUsage)
	f.BoolVar(&o.allowUnpinned, "allow-unpinned", env.AllowUnpinned, allowUnpinnedUsage)
}

// env is the instance commands' environment with the guest flags that
// are policy (--allow-unpinned) applied.
func (o *guestOptions) env(a *app) (*instanceEnv, error) {
	e, err := a.instanceEnv(o.arch, o.accel)
	if err != nil {
		return nil, err
	}
	e.cfg.AllowUnpinned = o.allowUnpinned
	return e, nil
}

// instanceEnv is what the instance commands share: the configuration,
// its intervals and the store of instances.
type instanceEnv struct {
	cfg   config.Config
	ivs   *intervals.Set
	store *instance.Store
	log   *slog.Logger
}

func (a *app) instanceEnv(arch, accel string) (*instanceEnv, error) {
	cfg := a.config()
	if arch != "" {
		cfg.Arch = arch
	}
	if accel != "" {
		cfg.Accel = accel
	}
	if err := a.checkConfig(cfg); err != nil {
		return nil, err
	}
	ivs, err := cfg.Intervals()
	if err != nil {
		return nil, usageError{fmt.Errorf("intervals: %w", err)}
	}
	store, err := instance.Open(cfg.CacheDir)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.DiscardHandler)
	if a.verbose {
		log = slog.New(slog.NewTextHandler(a.streams.ErrOut, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return &instanceEnv{cfg: cfg, ivs: ivs, store: store, log: log}, nil
}

// guest resolves the one template arg names (a name, an alias or a file
// holding one template), its image, and its saved guest; with provision,
// a template without a saved guest is provisioned and saved first.
func (a *app) guest(ctx context.Context, e *instanceEnv, arg string, sets []string, mounts []instance.MountSpec, provision bool) (*instance.Guest, error) {
	params, err := parseSets(sets)
	if err != nil {
		return nil, err
	}
	var opts []catalog.ResolveOption
	if params != nil {
		opts = append(opts, catalog.WithParams(params))
	}
	ts, err := a.argTemplates(ctx, []string{arg}, opts...)
	if err != nil {
		return nil, err
	}
	if len(ts) != 1 {
		return nil, usagef("%s holds %d templates: name one", arg, len(ts))
	}
	t := ts[0]
	if err := instance.CheckMounts(t, mounts); err != nil {
		return nil, usageError{err}
	}
	// Downloads the catalog does not pin: refused unless allowed, before
	// the image, the artifacts or a guest.
	if reason := framework.UnpinnedRefusal(e.cfg, t); reason != "" {
		return nil, usageError{fmt.Errorf("%s SKIPPED: %s", t.Name, reason)}
	}
	iopts := []image.Option{image.WithLogger(e.log), image.WithCacheDir(e.cfg.CacheDir)}
	if e.cfg.Offline {
		iopts = append(iopts, image.WithOffline())
	}
	if len(e.cfg.Mirrors) > 0 {
		iopts = append(iopts, image.WithMirrors(e.cfg.Mirrors))
	}
	if a.verbose {
		iopts = append(iopts, image.WithProgress(a.streams.ErrOut))
	}
	img, err := image.Resolve(ctx, t, e.cfg.Arch, iopts...)
	if err != nil {
		if reason, ok := image.Unavailable(err); ok {
			return nil, fmt.Errorf("no image for %s/%s here: %s", t.Name, e.cfg.Arch, reason)
		}
		return nil, err
	}
	// The template's vendor artifacts, fetched and verified on the host,
	// on the read-only drive verify uses (the same drive, the same saved
	// guest).
	drive := ""
	if len(t.Artifacts) > 0 {
		aopts := []artifacts.Option{artifacts.WithLogger(e.log), artifacts.WithCacheDir(e.cfg.CacheDir)}
		if e.cfg.Offline {
			aopts = append(aopts, artifacts.WithOffline())
		}
		if len(e.cfg.Mirrors) > 0 {
			aopts = append(aopts, artifacts.WithMirrors(e.cfg.Mirrors))
		}
		set, err := artifacts.Prepare(ctx, t, e.cfg.Arch, aopts...)
		if err != nil {
			return nil, fmt.Errorf("artifacts of %s/%s: %w", t.Name, e.cfg.Arch, err)
		}
		t = artifacts.Pin(t, e.cfg.Arch, set)
		drive = set.Drive
	}
	in := instance.SavedInput{
		ArtifactDrive: drive,
		CacheDir:      e.cfg.CacheDir, Template: t, Image: img, Arch: e.cfg.Arch,
		Accel: e.cfg.Accel, Intervals: e.ivs, Logger: e.log,
		ArtifactsDir: filepath.Join(e.cfg.ArtifactsDir, t.Name, "provision"),
	}
	g, err := instance.FindSaved(ctx, in)
	if errors.Is(err, instance.ErrNoSavedGuest) && provision {
		fmt.Fprintf(a.streams.ErrOut, "%s has no saved guest yet: provisioning one as verify does (minutes under TCG; logs in %s)\n", t.Name, in.ArtifactsDir)
		in.Provision = true
		g, err = instance.FindSaved(ctx, in)
	}
	return g, err
}

func newUpCmd(a *app) *cobra.Command {
	var (
		o    guestOptions
		name string
	)
	cmd := &cobra.Command{
		Use:   "up NAME|FILE",
		Short: "Start a template's guest and leave it running (enter it with shell, exec, cp)",
		Long: `up starts a guest of the template and leaves it running after the command
returns. It resumes the template's saved guest (the ready guest verify keeps in
the cache) into a disk of the instance's own, in seconds; a template without a
saved guest is first booted, provisioned and saved exactly as verify does.

Each instance has a name (--name, default the template's name, then -2, -3,
...), its own disk, SSH port and directory under <cache>/instances/NAME, so
instances of one template run side by side. QEMU runs on its own, without
the CLI; the directory records its pid and start time, so 'catalog ps' and
'catalog gc' can tell a live instance from a leftover one.

--mount HOST:GUEST[:ro] shares a host directory with the guest over 9p; the
instance's record (ps --output json) lists every mount. A resumed guest gets
the share's device on QEMU's command line and finds it with a PCI rescan, then
up mounts it over SSH and checks it. :ro is read-only on the host side (QEMU's
readonly=on), so guest root remounting it read-write gains nothing.

A template whose guest downloads what the catalog does not pin (engine.unpinned)
is refused (SKIPPED, exit 2) before anything is downloaded or booted, unless
--allow-unpinned is given.

A template with network egress: proxy gets its allowlisting proxy from a
helper process that up starts detached (its pid is in the record, 'ps -o json'
shows it): it serves the guest for as long as QEMU runs, logs every decision
to logs/proxy.log in the instance's directory, and exits with QEMU.

Enter it with 'catalog shell NAME', 'catalog exec NAME -- CMD...', copy with
'catalog cp', stop it with 'catalog down NAME'.`,
		Example: `  catalog up --offline debian-containerd
  catalog up --offline --name box ./my-template.yaml
  catalog up --offline --name agent --mount ./project:/workspace --mount /usr/share/doc:/reference:ro debian-13-sandbox
  catalog up --allow-unpinned ubuntu-k8s`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if name != "" {
				if err := instance.ValidName(name); err != nil {
					return usageError{err}
				}
			}
			mounts, err := o.parseMounts()
			if err != nil {
				return err
			}
			e, err := o.env(a)
			if err != nil {
				return err
			}
			if err := instance.CheckHostPaths(mounts, e.cfg.CacheDir); err != nil {
				return usageError{err}
			}
			ctx := cmd.Context()
			g, err := a.guest(ctx, e, args[0], o.sets, mounts, true)
			if err != nil {
				return err
			}
			start := time.Now()
			inst, err := e.store.Up(ctx, instance.UpInput{Guest: g, Name: name, Mounts: mounts, Intervals: e.ivs, Logger: e.log})
			if err != nil {
				if errors.Is(err, instance.ErrExists) {
					return usageError{fmt.Errorf("%w (catalog ps lists them; choose another --name)", err)}
				}
				if errors.Is(err, instance.ErrBadMount) {
					return usageError{err}
				}
				return err
			}
			printUp(cmd.OutOrStdout(), inst, time.Since(start))
			return nil
		},
	}
	o.flags(cmd, a.envCfg)
	cmd.Flags().StringVar(&name, "name", "", "the instance's name (default: the template's name, numbered when taken)")
	return cmd
}

func printUp(w io.Writer, i *instance.Instance, took time.Duration) {
	mounted := ""
	if len(i.Mounts) > 0 {
		mounted = fmt.Sprintf(" (mounts %.1fs of it)", i.MountTook.Seconds())
	}
	fmt.Fprintf(w, "%s is up: %s, %s, %s, resumed in %.1fs%s; ssh on %s\n",
		i.Name, i.Template, i.Arch, i.Accel, took.Seconds(), mounted, i.SSH.Addr)
	for _, m := range i.Mounts {
		mode := "ro"
		if m.Writable {
			mode = "rw"
		}
		fmt.Fprintf(w, "  mount %s -> %s (%s, %s)\n", m.HostPath, m.GuestPath, mode, m.Source)
	}
	if i.ProxyAddr != "" {
		fmt.Fprintf(w, "  egress proxy pid %d on %s, stops with the guest; log %s\n",
			i.Proxy.PID, i.ProxyAddr, filepath.Join(i.Dir, instance.LogsDir, instance.ProxyLogFile))
	}
	fmt.Fprintf(w, "  catalog shell %s\n", i.Name)
	fmt.Fprintf(w, "  catalog exec %s -- CMD...\n", i.Name)
	fmt.Fprintf(w, "  catalog cp FILE %s:PATH\n", i.Name)
	fmt.Fprintf(w, "  %s\n", i.SSHCommand())
	fmt.Fprintf(w, "  catalog down %s\n", i.Name)
}
