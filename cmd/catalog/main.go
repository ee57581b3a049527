// Command catalog lists, validates, renders and verifies guest templates.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// main wires the process to Run: arguments, standard streams, the
// environment and signals. The first SIGINT or SIGTERM cancels the run;
// the process then ends within a second with 130 or 143 whatever the run
// is doing (QEMU children die with it: Pdeathsig).
func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, os.Args[1:], IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}, os.Environ())
	}()
	select {
	case code := <-done:
		os.Exit(code)
	case s := <-sigs:
		cancel()
		code := ExitInterrupted
		if s == syscall.SIGTERM {
			code = ExitTerminated
		}
		select {
		case <-done:
		case <-time.After(900 * time.Millisecond):
		}
		os.Exit(code)
	}
}
