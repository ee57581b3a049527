package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/guestcatalog/guestcatalog/framework/instance"
	"github.com/guestcatalog/guestcatalog/framework/sshx"
)

func newExecCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "exec INSTANCE -- CMD [ARG...]",
		Short: "Run a command in an instance; its exit code is catalog's",
		Long: `exec runs CMD in the instance as the template's user, over SSH. Each argument
reaches the guest as one word (quoted), as with 'docker exec'; for a shell
line use: catalog exec box -- sh -c 'echo $HOME; id'. stdin, stdout and stderr
stream; a terminal is allocated when stdin is one. catalog exits with the
command's exit code.`,
		Example: `  catalog exec debian-containerd -- sudo ctr version
  echo hi | catalog exec debian-containerd -- cat`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 {
				return usagef("usage: catalog exec INSTANCE -- CMD [ARG...]")
			}
			return a.execIn(cmd.Context(), args[0], args[1:])
		},
	}
	return cmd
}

func newShellCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "shell INSTANCE",
		Short:   "Open a login shell in an instance",
		Example: `  catalog shell debian-13-containerd`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.execIn(cmd.Context(), args[0], nil)
		},
	}
}

func (a *app) execIn(ctx context.Context, name string, args []string) error {
	e, err := a.instanceEnv("", "")
	if err != nil {
		return err
	}
	inst, err := e.store.Get(name)
	if err != nil {
		return instanceErr(err)
	}
	st, restore, err := a.guestStreams()
	if err != nil {
		return err
	}
	code, err := inst.Exec(ctx, args, st)
	restore()
	if err != nil {
		return instanceErr(err)
	}
	if code != 0 {
		return exitError{code}
	}
	return nil
}

// instanceErr makes an unknown instance name a usage error.
func instanceErr(err error) error {
	if errors.Is(err, instance.ErrInvalidName) {
		return usageError{err}
	}
	if errors.Is(err, instance.ErrNotFound) {
		return usageError{fmt.Errorf("%w (catalog ps lists the instances)", err)}
	}
	return err
}

// guestStreams are the CLI's streams for a command in the guest: when
// stdin is a terminal, the guest gets one too (our terminal goes raw, its
// size and resizes are passed on) and restore puts it back.
func (a *app) guestStreams() (instance.Streams, func(), error) {
	st := instance.Streams{Stdin: a.streams.In, Stdout: a.streams.Out, Stderr: a.streams.ErrOut}
	in, ok := a.streams.In.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return st, func() {}, nil
	}
	fd := int(in.Fd())
	w, h, _ := term.GetSize(fd)
	resize := make(chan sshx.WindowSize, 1)
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	go func() {
		for range winch {
			if w, h, err := term.GetSize(fd); err == nil {
				select {
				case resize <- sshx.WindowSize{Width: w, Height: h}:
				default:
				}
			}
		}
	}()
	termName, _ := a.env.Lookup("TERM")
	st.Terminal = &sshx.Terminal{Term: termName, Width: w, Height: h, Resize: resize}
	old, err := term.MakeRaw(fd)
	if err != nil {
		signal.Stop(winch)
		return st, nil, err
	}
	return st, func() {
		signal.Stop(winch)
		close(winch)
		_ = term.Restore(fd, old)
	}, nil
}

func newCpCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "cp SRC DST",
		Short: "Copy a file between the host and an instance (INSTANCE:PATH)",
		Long: `cp copies one file into or out of an instance over SSH. One side is
INSTANCE:PATH, the other a host path. A destination that is a directory (or,
in the guest, ends in /) receives the file under its own name. A host path
with a colon is written with a slash before it (./a:b).`,
		Example: `  catalog cp ./app.tar box:/tmp/
  catalog cp box:/etc/os-release .`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := instance.ParseLocation(args[0])
			if err != nil {
				return usageError{err}
			}
			dst, err := instance.ParseLocation(args[1])
			if err != nil {
				return usageError{err}
			}
			if (src.Instance == "") == (dst.Instance == "") {
				return usagef("cp: exactly one of SRC and DST is INSTANCE:PATH")
			}
			e, err := a.instanceEnv("", "")
			if err != nil {
				return err
			}
			name := src.Instance + dst.Instance
			inst, err := e.store.Get(name)
			if err != nil {
				return instanceErr(err)
			}
			if dst.Instance != "" {
				return inst.CopyTo(cmd.Context(), src.Path, dst.Path)
			}
			return inst.CopyFrom(cmd.Context(), src.Path, dst.Path)
		},
	}
}
