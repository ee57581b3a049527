package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/config"
	"github.com/guestcatalog/guestcatalog/framework/version"
)

// Exit codes (README, `catalog --help`).
const (
	ExitOK          = 0   // every template passed (or the command did its job)
	ExitFailed      = 1   // a check or a template failed
	ExitUsage       = 2   // usage or invalid input: unknown command, template or flag value; invalid template
	ExitInterrupted = 130 // SIGINT
	ExitTerminated  = 143 // SIGTERM
)

const exitCodesHelp = `Exit codes:
  0    every template passed (or the command did its job)
  1    a check or a template failed (a FAIL line says which)
  2    usage or invalid input: unknown command, template or flag value, an
       invalid template or environment variable
  130  interrupted (SIGINT); 143 terminated (SIGTERM)
A verify in which every template was SKIPPED exits 0, unless --fail-on-skip
(env GUESTCATALOG_FAIL_ON_SKIP).`

// IOStreams are a command's standard streams.
type IOStreams struct {
	In          io.Reader
	Out, ErrOut io.Writer
}

// exitError carries an exit code without printing anything more: the
// command already reported what failed (a FAIL line, a table).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// usageError is a mistake in how catalog was called: exit 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// app is one invocation of catalog: its streams, its environment and the
// flags every command shares. Commands are built per invocation
// (newRootCmd), so nothing outlives a Run.
type app struct {
	streams IOStreams
	env     config.Env
	envCfg  config.Config // the environment's values, flags apply over them

	cacheDir  string
	offline   bool
	mirrors   []string
	verbose   bool
	catalogs  []string
	noBuiltin bool

	self     string               // the executable verify --parallel runs (tests: a stand-in)
	terminal func(io.Writer) bool // tests: says a writer is a terminal (nil: isTerminal)
}

// Run runs the catalog command line args (without the program name) and
// returns the exit code. environ is the environment (KEY=VALUE); nothing
// else of the process is read.
func Run(ctx context.Context, args []string, streams IOStreams, environ []string) int {
	a := &app{streams: streams, env: environ}
	cfg, err := config.Parse(environ)
	if err != nil {
		fmt.Fprintln(streams.ErrOut, "catalog:", sanitizeLines(err.Error()))
		return ExitUsage
	}
	a.envCfg = cfg
	root := newRootCmd(a)
	root.SetArgs(args)
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	err = root.ExecuteContext(ctx)
	return a.exitCode(ctx, err)
}

func (a *app) exitCode(ctx context.Context, err error) int {
	if err == nil {
		return ExitOK
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return ExitInterrupted
	}
	fmt.Fprintln(a.streams.ErrOut, "catalog:", sanitizeLines(err.Error()))
	var ue usageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	return ExitFailed
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "catalog",
		Short: "A catalog of guest image templates, and the proof that each one works",
		Long: `catalog lists, validates and renders guest templates (a distro image plus a
container engine), and verifies them end to end: it fetches or builds the image,
boots it under QEMU, provisions it through cloud-init as a user would get it,
and checks that the engine works (runs a container, builds an image, publishes
a port, schedules a pod).

Every command that takes template names also takes template files and
directories (an argument with a path separator, ending in .yaml/.yml, or
naming an existing file); --catalog DIR layers your own templates over the
built-in ones for every command.

` + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Get().String(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	groupCmd(root)
	pf := root.PersistentFlags()
	pf.StringVar(&a.cacheDir, "cache-dir", a.envCfg.CacheDir,
		"cache for images and provisioned disks (env GUESTCATALOG_CACHE; default $XDG_CACHE_HOME/guestcatalog)")
	pf.BoolVar(&a.offline, "offline", a.envCfg.Offline,
		"use locally built images and the cache only; never download (env GUESTCATALOG_OFFLINE=1)")
	pf.StringArrayVar(&a.mirrors, "mirror", nil,
		"rewrite download URLs, PREFIX=MIRROR (repeatable; after env GUESTCATALOG_MIRRORS, comma-separated)")
	pf.BoolVarP(&a.verbose, "verbose", "v", false, "log what happens, to stderr")
	pf.StringArrayVar(&a.catalogs, "catalog", a.envCfg.Catalogs,
		"a template file or directory layered over the built-in catalog (repeatable; env GUESTCATALOG_CATALOG, a path list)")
	pf.BoolVar(&a.noBuiltin, "no-builtin", a.envCfg.NoBuiltin,
		"leave the built-in templates out: the --catalog ones alone (env GUESTCATALOG_NO_BUILTIN)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newListCmd(a), newShowCmd(a), newValidateCmd(a), newRenderCmd(a), newPullCmd(a),
		newBuildImageCmd(a), newVerifyCmd(a), newMatrixCmd(a), newReportCmd(a), newCacheCmd(a),
		newDoctorCmd(a), newGcCmd(a), newImagesCmd(a), newVersionCmd(a),
		newUpCmd(a), newPsCmd(a), newShellCmd(a), newExecCmd(a), newCpCmd(a), newDownCmd(a), newRunCmd(a),
		newIsolationCmd(a), newNetProxyCmd(a),
	)
	wrapArgs(root)
	a.registerFlagCompletions(root)
	for _, c := range root.Commands() {
		switch c.Name() {
		case "show", "validate", "render", "pull", "build-image", "verify", "matrix":
			c.ValidArgsFunction = a.completeTemplates
		}
	}
	return root
}

// groupCmd makes a command that only groups subcommands print its help
// when called alone and refuse an unknown subcommand (exit 2): cobra would
// print the help and exit 0 for `catalog cache lss`.
func groupCmd(c *cobra.Command) {
	c.SuggestionsMinimumDistance = 2
	c.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, ", "))
		}
		return usageError{fmt.Errorf("%s; run '%s --help'", msg, cmd.CommandPath())}
	}
	c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
}

// wrapArgs marks every argument-count error as a usage error.
func wrapArgs(c *cobra.Command) {
	if v := c.Args; v != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := v(cmd, args); err != nil {
				var ue usageError
				if errors.As(err, &ue) {
					return err
				}
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		wrapArgs(sub)
	}
}

// allMirrors are the environment's mirrors, then the flags' (a flag wins
// for the same prefix).
func (a *app) allMirrors() []string {
	return append(append([]string(nil), a.envCfg.Mirrors...), a.mirrors...)
}

// config is the run configuration: the environment's values with the
// shared flags over them (verify applies its own on top).
func (a *app) config() config.Config {
	c := a.envCfg
	if c.ArtifactsDir == config.DefaultArtifactsDir(c.CacheDir) {
		// The default follows --cache-dir.
		c.ArtifactsDir = config.DefaultArtifactsDir(a.cacheDir)
	}
	c.CacheDir = a.cacheDir
	c.Offline = a.offline
	c.Mirrors = a.allMirrors()
	c.Catalogs = a.catalogs
	c.NoBuiltin = a.noBuiltin
	return c
}

// checkConfig validates the shared flags (and the environment under them).
func (a *app) checkConfig(c config.Config) error {
	if err := c.Validate(config.FlagNames); err != nil {
		return usageError{err}
	}
	return nil
}

// sanitizeLines escapes control characters line by line (catalog.Sanitize),
// keeping the message's own line breaks: an error may carry names and
// values from a hostile template file.
func sanitizeLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = catalog.Sanitize(l)
	}
	return strings.Join(lines, "\n")
}
