package main

import (
	"github.com/spf13/cobra"

	"github.com/guestcatalog/guestcatalog/framework/instance"
)

// newNetProxyCmd is the hidden helper `catalog up` starts, detached, for a
// template with egress: proxy: it serves the instance's egress proxy for as
// long as the instance's QEMU runs (instance.ServeProxy). It is the catalog
// binary itself, so the helper is always the same version as the up that
// started it and nothing else needs installing.
func newNetProxyCmd(a *app) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:    instance.ProxyHelperCommand + " --instance-dir DIR",
		Short:  "Serve an up instance's egress proxy until its QEMU exits (started by up)",
		Hidden: true,
		Long: `Started by 'catalog up' in a session of its own: serves the allowlisting
egress proxy of the instance directory DIR (proxy.json), prints its address on
stdout once it listens, logs decisions to stderr (DIR/logs/proxy.log), and
exits on SIGTERM or once the instance's QEMU is gone.`,
		Example: `  catalog ` + instance.ProxyHelperCommand + ` --instance-dir ~/.cache/guestcatalog/instances/box`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return usagef("--instance-dir is required")
			}
			return instance.ServeProxy(cmd.Context(), dir, cmd.OutOrStdout(), a.streams.ErrOut)
		},
	}
	cmd.Flags().StringVar(&dir, "instance-dir", "", "the instance's directory")
	return cmd
}
