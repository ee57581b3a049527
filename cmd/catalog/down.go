package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/guestcatalog/guestcatalog/framework/instance"
)

func newDownCmd(a *app) *cobra.Command {
	var all, force bool
	cmd := &cobra.Command{
		Use:   "down INSTANCE... | --all",
		Short: "Stop instances and remove them (graceful, bounded, then forced)",
		Long: `down stops an instance: an ACPI powerdown, and up to the named interval
default/shutdown (scaled by the accelerator) for the guest to power off; then
QEMU's quit and up to default/kill-grace; then SIGKILL. Then its egress proxy
helper, if any, is stopped (SIGTERM, then SIGKILL after 2s) and its directory
(disk, keys, logs) is removed. --force skips the powerdown. An instance whose QEMU is
already gone is just removed.`,
		Example: `  catalog down box
  catalog down --all`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return usagef("name the instances to stop, or use --all")
			}
			e, err := a.instanceEnv("", "")
			if err != nil {
				return err
			}
			names := args
			if all {
				l, err := e.store.List()
				if err != nil {
					return err
				}
				for _, i := range l {
					names = append(names, i.Name)
				}
			}
			var errs []error
			for _, n := range names {
				res, err := e.store.Down(cmd.Context(), n, instance.DownInput{Intervals: e.ivs, Force: force})
				if err != nil {
					errs = append(errs, instanceErr(err))
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: down (%s, %.1fs)\n", n, res.How, res.Duration.Seconds())
			}
			err = errors.Join(errs...)
			var ue usageError
			for _, e := range errs {
				if errors.As(e, &ue) {
					return usageError{err}
				}
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "stop every instance")
	cmd.Flags().BoolVar(&force, "force", false, "skip the ACPI powerdown: quit, then SIGKILL")
	return cmd
}
