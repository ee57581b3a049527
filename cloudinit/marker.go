package cloudinit

import (
	"fmt"
	"strconv"
	"strings"
)

// Marker is the outcome the runner leaves in MarkerPath.
type Marker struct {
	OK bool
	// Step is the step that failed: "NN-<slug>", or "packages" when a
	// package cloud-init should have installed is missing.
	Step string
	// ExitCode is the failing step's exit status.
	ExitCode int
}

// ParseMarker reads the content of MarkerPath: "ok" or
// "failed: <step> exit <code>".
func ParseMarker(content []byte) (Marker, error) {
	s := strings.TrimSpace(string(content))
	if s == MarkerOK {
		return Marker{OK: true}, nil
	}
	rest, ok := strings.CutPrefix(s, "failed: ")
	if ok {
		step, code, found := strings.Cut(rest, " exit ")
		n, err := strconv.Atoi(code)
		if found && err == nil && step != "" {
			return Marker{Step: step, ExitCode: n}, nil
		}
	}
	return Marker{}, fmt.Errorf("provisioning marker %s: unexpected content %q", MarkerPath, s)
}

// String renders the marker as the runner writes it.
func (m Marker) String() string {
	if m.OK {
		return MarkerOK
	}
	return fmt.Sprintf("failed: %s exit %d", m.Step, m.ExitCode)
}
