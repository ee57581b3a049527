package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/guestcatalog/guestcatalog/ci/workflow"
)

func main() {
	out := flag.String("o", "", "write the workflow to this file (default: stdout)")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "genworkflow:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	b, err := workflow.Generate()
	if err != nil {
		return err
	}
	if out == "" {
		_, err = os.Stdout.Write(b)
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, b, 0o644)
}
