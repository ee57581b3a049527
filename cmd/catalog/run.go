package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/guestcatalog/guestcatalog/framework/instance"
)

func newRunCmd(a *app) *cobra.Command {
	var (
		o  guestOptions
		rm bool
	)
	cmd := &cobra.Command{
		Use:   "run --rm NAME|FILE -- CMD [ARG...]",
		Short: "Run one command in a disposable guest of a template, then remove it",
		Long: `run --rm resumes the template's saved guest into a disk of its own, runs CMD in
it as the template's user (each argument one word, as with exec), and removes
everything afterwards: QEMU, the disk, the run directory. Ctrl-C removes it
too. catalog exits with the command's exit code. The template needs a saved
guest (catalog verify or catalog up makes one); run does not provision.
--mount HOST:GUEST[:ro] shares host directories as with up. A template whose
guest downloads what the catalog does not pin (engine.unpinned) is refused
(SKIPPED, exit 2) unless --allow-unpinned is given.`,
		Example: `  catalog run --rm --offline debian-containerd -- sh -c 'echo hi; exit 3'
  catalog run --rm --offline debian-containerd -- sudo ctr version
  catalog run --rm --offline --mount ./project:/workspace debian-13-sandbox -- make -C /workspace test`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !rm {
				return usagef("run needs --rm (a guest that stays is 'catalog up')")
			}
			if cmd.ArgsLenAtDash() != 1 {
				return usagef("usage: catalog run --rm NAME|FILE -- CMD [ARG...]")
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
			g, err := a.guest(ctx, e, args[0], o.sets, mounts, false)
			if err != nil {
				return err
			}
			st, restore, err := a.guestStreams()
			if err != nil {
				return err
			}
			code, err := instance.Run(ctx, instance.RunInput{Guest: g, Args: args[1:], Streams: st, Mounts: mounts,
				RunRoot: e.cfg.RunRoot, Intervals: e.ivs, Logger: e.log})
			restore()
			if errors.Is(err, instance.ErrBadMount) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			if code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
	o.flags(cmd, a.envCfg)
	cmd.Flags().BoolVar(&rm, "rm", false, "remove the guest when CMD ends (required)")
	return cmd
}
