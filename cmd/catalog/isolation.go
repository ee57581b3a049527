package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/instance"
	"github.com/guestcatalog/guestcatalog/framework/isolation"
)

// isolationEntry is `catalog isolation -o json`.
type isolationEntry struct {
	Instance string             `json:"instance"`
	Template string             `json:"template"`
	Strict   bool               `json:"strict"`
	Results  []isolation.Result `json:"results"`
	NotHeld  []string           `json:"notHeld"`
	Seconds  float64            `json:"seconds"`
}

// Egress targets the instance run tries (the same as the suite's).
const (
	isolationAllowedHost = "deb.debian.org"
	isolationDeniedHost  = "example.org"
)

func newIsolationCmd(a *app) *cobra.Command {
	var (
		o    outputOptions
		skip []string
	)
	cmd := &cobra.Command{
		Use:   "isolation INSTANCE",
		Short: "Run the isolation suite against a running instance (one started with up)",
		Long: `isolation runs the isolation checks of 'verify --suite isolation' inside an
instance started with 'catalog up', so the sandbox you started for real is
the one proven. It makes the host canaries for this run (a random token in a
host file outside every mount, a listener on the host's 127.0.0.1 answering
it), reads the instance's shares and forwarded ports from its running QEMU,
and prints each property: held, not-held or skipped, with the evidence.
Start the instance first: catalog up debian-13-containerd --name box.

The disk check fills the guest's root filesystem to ENOSPC (about a minute
per 10 GiB under TCG) and removes the fill afterwards; --skip it to leave
the disk alone. The snapshot check resumes the template's saved guest twice
(seconds). Teardown is not checked: the instance keeps running ('catalog
down' ends it).

catalog exits 1 when the template declares isolation: strict and a property
does not hold; other templates' profiles are only reported.`,
		Example: `  catalog isolation box
  catalog isolation debian-13-sandbox -o yaml
  catalog isolation box -o json | jq -r '.results[] | select(.status == "not-held") | .property'
  catalog isolation box --skip resources/disk-fills-at-declared-size`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := o.get()
			if err != nil {
				return err
			}
			for _, s := range skip {
				if !slices.Contains(isolation.Properties(), s) {
					return usagef("--skip %q: not a property; want one of %s", s, strings.Join(isolation.Properties(), ", "))
				}
			}
			return a.isolationOf(cmd.Context(), cmd.OutOrStdout(), args[0], format, skip)
		},
	}
	addOutputFlag(cmd, &o, false)
	cmd.Flags().StringArrayVar(&skip, "skip", nil, "a property not to check (repeatable), e.g. resources/disk-fills-at-declared-size")
	_ = cmd.RegisterFlagCompletionFunc("skip", cobra.FixedCompletions(isolation.Properties(), cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (a *app) isolationOf(ctx context.Context, w io.Writer, name, format string, skip []string) error {
	e, err := a.instanceEnv("", "")
	if err != nil {
		return err
	}
	inst, err := e.store.Get(name)
	if err != nil {
		return instanceErr(err)
	}
	if st := inst.Status(); st != instance.Running {
		return fmt.Errorf("%s is %s: %w", name, st, instance.ErrNotRunning)
	}
	ts, err := a.argTemplates(ctx, []string{inst.Template})
	if err != nil {
		return fmt.Errorf("instance %s: its template: %w", name, err)
	}
	if len(ts) != 1 {
		return fmt.Errorf("instance %s: template %s resolves to %d templates", name, inst.Template, len(ts))
	}
	t := ts[0]

	c, err := isolation.NewCanaries(nil)
	if err != nil {
		return err
	}
	defer c.Close()
	// As in a verify run, the token is in this process's environment too
	// (the instance's QEMU started before it existed, so it never had it).
	_ = os.Setenv(c.EnvName, c.Token)
	defer os.Unsetenv(c.EnvName)

	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	targets := isolation.HostTargets(tctx, isolationAllowedHost, isolationDeniedHost)
	cancel()
	in, closeGuest, err := isolation.FromInstance(ctx, inst, t, c, targets)
	if err != nil {
		return err
	}
	defer closeGuest()
	for _, m := range in.Mounts {
		if isolationWithin(c.Dir, m.HostPath) {
			return fmt.Errorf("the canary directory %s is inside the share %s of %s: choose shares outside %s", c.Dir, m.HostPath, name, os.TempDir())
		}
	}
	in.Skip = skip
	if !slices.Contains(skip, isolation.PropSnapshotUnique) {
		in.Resume, in.NoResumeReason = isolation.SavedResumer(ctx, e.cfg.CacheDir, inst.Arch, t, e.ivs)
	}
	start := time.Now()
	p, err := isolation.Run(ctx, in)
	if err != nil {
		return err
	}
	ent := isolationEntry{Instance: name, Template: t.Name, Strict: p.Strict, Results: p.Results,
		NotHeld: p.NotHeld(), Seconds: time.Since(start).Seconds()}
	return reportIsolation(w, format, ent)
}

// reportIsolation prints the profile and is exitError{ExitFailed} when a
// strict template's property does not hold.
func reportIsolation(w io.Writer, format string, ent isolationEntry) error {
	if ent.NotHeld == nil {
		ent.NotHeld = []string{}
	}
	var err error
	if format != outputTable {
		err = writeData(w, format, ent)
	} else {
		err = printIsolation(w, ent)
	}
	if err != nil {
		return err
	}
	if ent.Strict && len(ent.NotHeld) > 0 {
		return exitError{ExitFailed}
	}
	return nil
}

func printIsolation(w io.Writer, e isolationEntry) error {
	fmt.Fprintf(w, "isolation profile of instance %s (template %s, strict: %v)\n", e.Instance, e.Template, e.Strict)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range e.Results {
		fmt.Fprintf(tw, "%s\t%s\t%.1fs\t%s\n", r.Status, r.Property, r.Seconds, oneLineDetail(r.Detail))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch {
	case len(e.NotHeld) == 0:
		fmt.Fprintf(w, "every checked property holds (%.0fs)\n", e.Seconds)
	case e.Strict:
		fmt.Fprintf(w, "FAIL: %d properties do not hold and %s declares isolation: strict\n", len(e.NotHeld), e.Template)
	default:
		fmt.Fprintf(w, "%d properties do not hold (reported only: %s does not declare isolation: strict)\n", len(e.NotHeld), e.Template)
	}
	return nil
}

// oneLineDetail: the evidence comes from the guest (a hostile one may
// print anything): one line, control characters escaped.
func oneLineDetail(s string) string {
	s = catalog.Sanitize(strings.Join(strings.Fields(s), " "))
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

func isolationWithin(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}
