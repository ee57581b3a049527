package machine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/guestcatalog/guestcatalog/framework/exec"
)

// Artifact file names in a machine's artifacts directory.
const (
	ArtifactSerial         = "serial.log"
	ArtifactSerialKVM      = "serial-kvm.log"
	ArtifactQEMUArgv       = "qemu-argv.txt"
	ArtifactQMPEvents      = "qmp-events.jsonl"
	ArtifactPhases         = "phases.json"
	ArtifactAccel          = "accel.json"
	ArtifactUserData       = "user-data"
	ArtifactCloudInitLog   = "cloud-init.log"
	ArtifactCloudInitOut   = "cloud-init-output.log"
	ArtifactCloudInitState = "cloud-init-status.json"
	ArtifactProvisionLog   = "provision.log"
	ArtifactJournal        = "journal.txt"
	ArtifactSSHCommand     = "ssh-command.txt"
	ArtifactQEMUStderr     = "qemu-stderr.log"
)

// guestLogLimit bounds each log copied from the guest (its last bytes).
const guestLogLimit = 8 << 20

// guestArtifact is one file collected from the guest at Close or failure.
type guestArtifact struct {
	name   string
	script string // run as root; stdout is the artifact
}

func guestArtifacts() []guestArtifact {
	return []guestArtifact{
		{ArtifactCloudInitLog, tailScript("/var/log/cloud-init.log")},
		{ArtifactCloudInitOut, tailScript("/var/log/cloud-init-output.log")},
		{ArtifactProvisionLog, tailScript(ProvisionLog)},
		// Bounded: never `cloud-init status --wait`.
		{ArtifactCloudInitState, `if command -v cloud-init >/dev/null; then timeout 60 cloud-init status --long --format json; else cat ` + ResultJSON + `; fi`},
		{ArtifactJournal, fmt.Sprintf("journalctl -b --no-pager -o short-monotonic 2>&1 | tail -c %d", guestLogLimit)},
	}
}

func tailScript(path string) string {
	return fmt.Sprintf("tail -c %d %s", guestLogLimit, exec.Quote(path))
}

// collectGuestArtifacts copies the guest's logs into dir over r, as root.
// Best effort within ctx: each file is tried, errors are joined.
func collectGuestArtifacts(ctx context.Context, r exec.Runner, dir string) error {
	var errs []error
	for _, a := range guestArtifacts() {
		fctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		res, err := r.Run(fctx, exec.Cmd{Script: a.script, Sudo: true})
		cancel()
		if len(res.Stdout) == 0 && err != nil {
			errs = append(errs, fmt.Errorf("collecting %s: %w", a.name, err))
			continue
		}
		// A non-zero exit with output (cloud-init status exits 1 on error,
		// 2 on recoverable errors) is still the artifact.
		if werr := os.WriteFile(filepath.Join(dir, a.name), res.Stdout, 0o644); werr != nil {
			errs = append(errs, werr)
		}
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
	}
	return errors.Join(errs...)
}

// writeJSON writes v as indented JSON (atomically: temp file + rename).
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
