package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/guestcatalog/guestcatalog/framework/instance"
)

// psEntry is one line of `catalog ps --json`.
type psEntry struct {
	Name          string    `json:"name"`
	Status        string    `json:"status"`
	Template      string    `json:"template"`
	Arch          string    `json:"arch"`
	Accelerator   string    `json:"accelerator"`
	Started       time.Time `json:"started,omitzero"`
	UptimeSeconds float64   `json:"uptimeSeconds"`
	SSH           string    `json:"ssh,omitempty"`
	User          string    `json:"user,omitempty"`
	QEMUPID       int       `json:"qemuPID,omitempty"`
	// ProxyPID is the egress proxy helper (egress: proxy templates).
	ProxyPID int    `json:"proxyPID,omitempty"`
	Dir      string `json:"dir"`
	// Mounts are the host directories shared with the guest.
	Mounts []instance.Mount `json:"mounts,omitempty"`
}

func newPsCmd(a *app) *cobra.Command {
	var o outputOptions
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List the instances started with up",
		Long: `ps lists the instances started with 'catalog up': name, status, template,
arch, accelerator, uptime and SSH address. Status is running (its QEMU, the
same process that was recorded, lives), starting (an up is still bringing it
up) or dead (its QEMU is gone: 'catalog gc' or 'catalog down' removes it).`,
		Example: `  catalog ps
  catalog ps -o json | jq -r '.[] | select(.status == "running") | .name'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			format, err := o.get()
			if err != nil {
				return err
			}
			e, err := a.instanceEnv("", "")
			if err != nil {
				return err
			}
			l, err := e.store.List()
			if err != nil {
				return err
			}
			return printPs(cmd.OutOrStdout(), l, time.Now(), format, e.store.Dir())
		},
	}
	addOutputFlag(cmd, &o, true)
	return cmd
}

func printPs(w io.Writer, l []*instance.Instance, now time.Time, format string, dir string) error {
	es := make([]psEntry, 0, len(l))
	for _, i := range l {
		st := i.Status()
		e := psEntry{Name: i.Name, Status: string(st), Template: i.Template, Arch: i.Arch, Accelerator: i.Accel,
			Started: i.Started, SSH: i.SSH.Addr, User: i.SSH.User, Dir: i.Dir, Mounts: i.Mounts}
		if st == instance.Running {
			e.UptimeSeconds = i.Uptime(now).Round(time.Second).Seconds()
			e.QEMUPID = i.QEMU.PID
			if i.Proxy.Alive() {
				e.ProxyPID = i.Proxy.PID
			}
		}
		es = append(es, e)
	}
	if format != outputTable {
		return writeData(w, format, es)
	}
	if len(es) == 0 {
		fmt.Fprintf(w, "no instances in %s (catalog up NAME starts one)\n", dir)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATUS\tTEMPLATE\tARCH\tACCEL\tUPTIME\tSSH")
	for _, e := range es {
		up := "-"
		if e.Status == string(instance.Running) {
			up = (time.Duration(e.UptimeSeconds) * time.Second).String()
		}
		ssh := "-"
		if e.SSH != "" {
			ssh = e.User + "@" + e.SSH
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Status, e.Template, e.Arch, orDash(e.Accelerator), up, ssh)
	}
	return tw.Flush()
}

// gcInstances is gc's part for the instances of up (instance.Store.Gc).
func (a *app) gcInstances(ctx context.Context, dryRun bool) (instance.GcResult, error) {
	e, err := a.instanceEnv("", "")
	if err != nil {
		return instance.GcResult{}, err
	}
	return e.store.Gc(ctx, dryRun)
}

func printGcInstances(w io.Writer, res instance.GcResult, verbose bool) {
	verb := "removed"
	if res.DryRun {
		verb = "would remove"
	}
	for _, e := range res.Removed {
		fmt.Fprintf(w, "%s instance %s (%s)\n", verb, e.Name, e.Reason)
	}
	if verbose {
		for _, e := range res.Kept {
			fmt.Fprintf(w, "kept instance %s (%s)\n", e.Name, e.Reason)
		}
	}
}
