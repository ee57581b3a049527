package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/guestcatalog/guestcatalog/framework/imagebuild"
	"github.com/guestcatalog/guestcatalog/framework/instance"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
)

func newGcCmd(a *app) *cobra.Command {
	var (
		dryRun  bool
		o       outputOptions
		runRoot string
	)
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove what crashed runs left behind (QEMU processes, run dirs, overlays)",
		Long: `gc removes the leftovers of runs that ended without cleaning up (a killed test
binary, a crashed CLI), and only what is provably ours: every run dir holds an
owner.json naming the process that created it and its start time; a run dir
whose owner is gone (or that dates from before the last boot) is removed, after
killing the QEMU processes whose command line names it. Run dirs whose owner
lives, and anything without a valid owner.json, are kept.

It also removes the instances of 'catalog up' whose QEMU is gone (killed,
crashed, or from before the last boot), and those whose up died before the
guest was ready (killing the QEMU it had started, and the egress proxy
helper of either); running instances and their helpers stay.

Run dirs live under $GUESTCATALOG_RUNTIME_DIR, else $XDG_RUNTIME_DIR/guestcatalog,
else <tmp>/guestcatalog-<uid>. Normally nothing is left: QEMU stops when its
context ends and dies with its parent (Pdeathsig).`,
		Example: `  catalog gc --dry-run
  catalog gc -o json | jq -r '.removed[].dir'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			format, err := o.get()
			if err != nil {
				return err
			}
			opts := []qemu.GcOption{qemu.GcRoot(runRoot), qemu.GcDryRun(dryRun)}
			if a.verbose {
				opts = append(opts, qemu.GcLogger(slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))))
			}
			res, err := qemu.Gc(cmd.Context(), opts...)
			// Interrupted image builds under the cache root (issue 11), and
			// instances whose QEMU is gone (issue 15).
			builds, berr := imagebuild.CleanInterrupted(a.cacheDir, dryRun)
			ires, ierr := a.gcInstances(cmd.Context(), dryRun)
			out := gcOutput{GcResult: res, InterruptedBuilds: builds, Instances: ires}
			if perr := printGc(cmd.OutOrStdout(), out, format, a.verbose); perr != nil {
				return perr
			}
			return errors.Join(err, berr, ierr)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&dryRun, "dry-run", false, "say what would be removed and killed; change nothing")
	addOutputFlag(cmd, &o, true)
	f.StringVar(&runRoot, "run-root", a.envCfg.RunRoot, "directory holding the run dirs (env "+qemu.EnvRunRoot+")")
	return cmd
}

// gcOutput is what gc reports: the run dirs (qemu.Gc), the interrupted
// image builds (imagebuild.CleanInterrupted) and the dead instances.
type gcOutput struct {
	qemu.GcResult
	InterruptedBuilds []imagebuild.Interrupted `json:"interruptedBuilds,omitempty"`
	Instances         instance.GcResult        `json:"instances"`
}

func printGc(w io.Writer, out gcOutput, format string, verbose bool) error {
	res := out.GcResult
	for _, b := range out.InterruptedBuilds {
		if format != outputTable {
			break
		}
		switch {
		case b.InUse:
			if verbose {
				fmt.Fprintf(w, "kept %s (a build runs)\n", b.Dir)
			}
		case b.Err != "":
			fmt.Fprintf(w, "could not remove interrupted build %s: %s\n", b.Dir, b.Err)
		case res.DryRun:
			fmt.Fprintf(w, "would remove interrupted build %s\n", b)
		default:
			fmt.Fprintf(w, "removed interrupted build %s\n", b)
		}
	}
	if format != outputTable {
		if res.Removed == nil {
			res.Removed = []qemu.GcEntry{}
		}
		if res.Kept == nil {
			res.Kept = []qemu.GcEntry{}
		}
		out.GcResult = res
		return writeData(w, format, out)
	}
	verb := "removed"
	if res.DryRun {
		verb = "would remove"
	}
	for _, e := range res.Removed {
		line := fmt.Sprintf("%s %s (%s", verb, e.Dir, e.Reason)
		if len(e.Killed) > 0 {
			kill := "killed"
			if res.DryRun {
				kill = "would kill"
			}
			line += fmt.Sprintf("; %s qemu pid %s", kill, joinInts(e.Killed))
		}
		fmt.Fprintln(w, line+")")
	}
	if verbose {
		for _, e := range res.Kept {
			fmt.Fprintf(w, "kept %s (%s)\n", e.Dir, e.Reason)
		}
	}
	printGcInstances(w, out.Instances, verbose)
	if len(res.Removed) == 0 && !removedBuilds(out.InterruptedBuilds) && len(out.Instances.Removed) == 0 {
		fmt.Fprintf(w, "nothing to remove under %s", res.Root)
		if n := len(res.Kept); n > 0 {
			fmt.Fprintf(w, " (%d run dir(s) in use or not ours)", n)
		}
		fmt.Fprintln(w)
	}
	return nil
}

func removedBuilds(bs []imagebuild.Interrupted) bool {
	for _, b := range bs {
		if !b.InUse && b.Err == "" {
			return true
		}
	}
	return false
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}
