// Command catalog lists, validates, renders and verifies guest templates.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// exitError carries an exit code without printing anything more: the
// command already reported what failed (a FAIL line, a table).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// rootCmd is the `catalog` command; subcommands register themselves from
// their own files with rootCmd.AddCommand in init.
var rootCmd = &cobra.Command{
	Use:   "catalog",
	Short: "A catalog of guest image templates, and the proof that each one works",
	Long: `catalog lists, validates and renders guest templates (a distro image plus a
container engine), and verifies them end to end: it fetches or builds the image,
boots it under QEMU, provisions it through cloud-init as a user would get it,
and checks that the engine works (runs a container, builds an image, publishes
a port, schedules a pod).`,
	SilenceUsage:  true,
	SilenceErrors: true,
}

// globalOptions are the flags every subcommand shares.
type globalOptions struct {
	CacheDir string // --cache-dir, $GUESTCATALOG_CACHE, else $XDG_CACHE_HOME/guestcatalog
	Offline  bool   // --offline: local builds and the cache only, no network
	Mirrors  []string
	Verbose  bool
}

var global globalOptions

func init() {
	pf := rootCmd.PersistentFlags()
	pf.StringVar(&global.CacheDir, "cache-dir", os.Getenv("GUESTCATALOG_CACHE"),
		"cache for images and provisioned disks (env GUESTCATALOG_CACHE; default $XDG_CACHE_HOME/guestcatalog)")
	pf.BoolVar(&global.Offline, "offline", os.Getenv("GUESTCATALOG_OFFLINE") == "1",
		"use locally built images and the cache only; never download (env GUESTCATALOG_OFFLINE=1)")
	pf.StringArrayVar(&global.Mirrors, "mirror", nil,
		"rewrite download URLs, PREFIX=MIRROR (repeatable; env GUESTCATALOG_MIRRORS, comma-separated)")
	pf.BoolVarP(&global.Verbose, "verbose", "v", false, "log what happens, to stderr")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := rootCmd.ExecuteContext(ctx)
	stop()
	if err == nil {
		return
	}
	var ee exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	fmt.Fprintln(os.Stderr, "catalog:", err)
	os.Exit(1)
}
