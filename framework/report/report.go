package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/fsutil"
	"github.com/guestcatalog/guestcatalog/framework/version"
)

// Result is the outcome of a check or of a whole template.
type Result string

// Results, lowercase in JSON.
const (
	Pass Result = "pass"
	Fail Result = "fail"
	Skip Result = "skip"
)

// Verdict is the upper-case word printed for a result: PASS, FAIL, SKIPPED.
func (r Result) Verdict() string {
	switch r {
	case Pass:
		return "PASS"
	case Fail:
		return "FAIL"
	default:
		return "SKIPPED"
	}
}

// Image says where the guest disk came from.
type Image struct {
	// Source is the URL or "build:<suite>" for a locally built image.
	Source string `json:"source"`
	Digest string `json:"digest,omitempty"`
	// Recipe is the local build recipe, when the image was built.
	Recipe any `json:"recipe,omitempty"`
}

// Phase is one readiness phase and how long it took.
type Phase struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
	Result  Result  `json:"result,omitempty"`
}

// Check is one spec.
type Check struct {
	Name    string  `json:"name"`
	Result  Result  `json:"result"`
	Seconds float64 `json:"seconds"`
	Message string  `json:"message,omitempty"`
	// Attempts is how often the spec ran (Ginkgo FlakeAttempts), when
	// more than once: a check that passed on a later attempt is flaky.
	Attempts int `json:"attempts,omitempty"`
}

// IsFlaky says the template passed only after a retry: its guest's start
// was retried (Flaky, a failure before userspace) or some check needed more
// than one attempt.
func (t *Template) IsFlaky() bool {
	if t.Flaky {
		return true
	}
	for _, c := range t.Checks {
		if c.Attempts > 1 {
			return true
		}
	}
	return false
}

// Attempt is one start attempt of a flaky template's guest.
type Attempt struct {
	// Result is fail (retried, or the last attempt failed) or pass.
	Result Result `json:"result"`
	// Phase is the phase that failed ("" when the attempt succeeded).
	Phase       string  `json:"phase,omitempty"`
	Error       string  `json:"error,omitempty"`
	ConsoleTail string  `json:"consoleTail,omitempty"`
	Artifacts   string  `json:"artifacts,omitempty"`
	Seconds     float64 `json:"seconds"`
}

// Template is report.json: the verdict for one template.
type Template struct {
	Template    string `json:"template"`
	Arch        string `json:"arch,omitempty"`
	Result      Result `json:"result"`
	Reason      string `json:"reason,omitempty"`
	Accelerator string `json:"accelerator,omitempty"`
	AccelReason string `json:"acceleratorReason,omitempty"`
	// HostArch is the arch of the machine that ran the guest.
	HostArch string `json:"hostArch,omitempty"`
	// ForeignArch is true when the guest's arch is not the host's: no KVM,
	// TCG translates every guest instruction (an aarch64 guest on an
	// x86_64 host), and the run's intervals carry EmulationFactor.
	ForeignArch bool `json:"foreignArch,omitempty"`
	// EmulationFactor is the measured slowdown of a foreign-arch guest
	// against a native one under TCG (intervals foreign.<arch>), applied
	// on top of the accelerator's scale.
	EmulationFactor float64   `json:"emulationFactor,omitempty"`
	Image           Image     `json:"image"`
	QEMUVersion     string    `json:"qemuVersion,omitempty"`
	EngineVersion   string    `json:"engineVersion,omitempty"`
	Provisioned     string    `json:"provisioned,omitempty"` // "fresh" or "reused"
	Phases          []Phase   `json:"phases,omitempty"`
	Checks          []Check   `json:"checks"`
	Artifacts       string    `json:"artifacts,omitempty"`
	Started         time.Time `json:"started"`
	Seconds         float64   `json:"seconds"`

	// issue 11 (c-verified).
	// ReuseDiscarded says why a saved guest was not reused but discarded
	// and replaced ("identity check failed: …", "resume failed: …").
	ReuseDiscarded string `json:"reuseDiscarded,omitempty"`
	// Flaky is true when the guest's start failed before userspace (a
	// kernel panic, a firmware stall, QEMU crashing) and was retried;
	// Attempts then holds every attempt, the last one included.
	Flaky    bool      `json:"flaky,omitempty"`
	Attempts []Attempt `json:"attempts,omitempty"`
	// Isolation is the template's isolation profile (suite:isolation),
	// one entry per property: held, not-held or skipped.
	Isolation []IsolationResult `json:"isolation,omitempty"`
	// VendorArtifacts are the template's artifacts (catalog artifacts:),
	// fetched and verified on the host and handed to the guest read-only:
	// each with the digest it was verified against and where that digest
	// came from (the catalog, or the release's checksum file).
	VendorArtifacts []VendorArtifact `json:"vendorArtifacts,omitempty"`
	// Unpinned are the downloads the guest makes without a pin (catalog
	// engine.unpinned), recorded when the run allowed them
	// (--allow-unpinned); without that the template is skipped.
	Unpinned []Unpinned `json:"unpinned,omitempty"`
	// Tool is the build of guestcatalog that produced the report (module
	// version, VCS revision, Go version, embedded catalog digest).
	Tool *version.Info `json:"tool,omitempty"`
}

// VendorArtifact is one artifact as fetched for the run.
type VendorArtifact struct {
	Name        string `json:"name"`
	URL         string `json:"url"`
	Source      string `json:"source,omitempty"`
	Digest      string `json:"digest"`
	DigestFrom  string `json:"digestFrom"`
	Size        int64  `json:"size"`
	Status      string `json:"status"`
	InstallPath string `json:"installPath,omitempty"`
}

// Unpinned is one download the guest made without a pin, and why it has
// none.
type Unpinned struct {
	What   string `json:"what"`
	Reason string `json:"reason"`
}

// IsolationResult is one property of an isolation profile.
type IsolationResult struct {
	Property string  `json:"property"`
	Status   string  `json:"status"`
	Detail   string  `json:"detail,omitempty"`
	Seconds  float64 `json:"seconds"`
}

// Finish derives the template's result from its checks: fail if any check
// failed, pass if at least one passed, skip otherwise (the reason of the
// first skipped check becomes the template's reason when none is set).
func (t *Template) Finish() {
	t.Result = Skip
	passed := false
	for _, c := range t.Checks {
		switch c.Result {
		case Fail:
			t.Result = Fail
			if t.Reason == "" {
				t.Reason = c.Name + ": " + firstLine(c.Message)
			}
		case Pass:
			passed = true
		case Skip:
			if t.Reason == "" && c.Message != "" && !passed {
				t.Reason = c.Message
			}
		}
	}
	if t.Result != Fail && passed {
		t.Result = Pass
		t.Reason = ""
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// WriteFile writes the report as indented JSON, atomically.
func (t *Template) WriteFile(path string) error {
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding report for %s: %w", t.Template, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, append(b, '\n'), 0o644)
}

// ReadFile reads a report.json.
func ReadFile(path string) (*Template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t Template
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &t, nil
}

// CheckLine is the CLI's line for one check: "  PASS     3.1s  docker: run".
func CheckLine(c Check) string {
	// Check names and messages come from templates (declarative checks)
	// and guests: never let them move the cursor or rewrite a line.
	line := fmt.Sprintf("  %-7s %6.1fs  %s", c.Result.Verdict(), c.Seconds, catalog.Sanitize(c.Name))
	if c.Result != Pass && c.Message != "" {
		line += "\n           " + catalog.Sanitize(strings.ReplaceAll(firstLine(c.Message), "\n", " "))
	}
	return line
}

// VerdictLine is the CLI's line for one template.
func VerdictLine(t *Template) string {
	s := fmt.Sprintf("%s %s (%.0fs", t.Result.Verdict(), catalog.Quote(t.Template), t.Seconds)
	if t.Accelerator != "" {
		s += ", " + t.Accelerator
	}
	if t.Flaky {
		s += fmt.Sprintf(", flaky: %d attempts", len(t.Attempts))
	}
	s += ")"
	if t.Reason != "" {
		s += ": " + catalog.Sanitize(t.Reason)
	}
	if t.Result == Fail && t.Artifacts != "" {
		s += "\n  artifacts: " + t.Artifacts
	}
	return s
}

// Summary prints one verdict line per template, sorted by name, and returns
// whether nothing failed.
func Summary(w io.Writer, ts []*Template) bool {
	sorted := append([]*Template(nil), ts...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Template < sorted[j].Template })
	ok := true
	for _, t := range sorted {
		fmt.Fprintln(w, VerdictLine(t))
		if t.Result == Fail {
			ok = false
		}
	}
	return ok
}
