package machine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/guestcatalog/guestcatalog/cloudinit"
	"github.com/guestcatalog/guestcatalog/framework/exec"
)

// Guest paths read by the cloud-init phase and by artifact collection.
const (
	// ResultJSON is written by cloud-init when its last stage (final)
	// ends; it lives on /run (tmpfs), so unlike
	// /var/lib/cloud/instance/boot-finished it never survives from an
	// earlier boot of a reused disk.
	ResultJSON = "/run/cloud-init/result.json"
	StatusJSON = "/run/cloud-init/status.json"
	// ProvisionedMarker holds "ok" or "failed: <step> exit <n>" (cloudinit).
	ProvisionedMarker = cloudinit.MarkerPath
	// ProvisionLog is the provisioning scripts' output (cloudinit).
	ProvisionLog = cloudinit.LogPath
)

// cloudInitPoll is how often the guest checks for ResultJSON: the whole
// wait runs in the guest in one SSH command, so noticing the end costs at
// most this much, without a round trip per check.
const cloudInitPoll = 200 * time.Millisecond

// cloudInitScript waits in the guest (bounded by maxWait) for cloud-init's
// final result, then prints result.json, status.json and the provisioning
// marker in one go, separated by marker lines. It never calls
// `cloud-init status --wait` (seen to spin forever).
func cloudInitScript(maxWait time.Duration) string {
	return cloudInitScriptFor(maxWait, ResultJSON, StatusJSON, ProvisionedMarker)
}

func cloudInitScriptFor(maxWait time.Duration, resultJSON, statusJSON, marker string) string {
	polls := int(math.Ceil(maxWait.Seconds() / cloudInitPoll.Seconds()))
	if polls < 1 {
		polls = 1
	}
	return fmt.Sprintf(`i=0
while [ ! -e %[1]s ]; do
  if [ "$i" -ge %[2]d ]; then echo "cloud-init did not finish: no %[1]s" >&2; exit 124; fi
  sleep %.1[3]f; i=$((i+1))
done
echo '%[4]s result'; cat %[1]s; echo
echo '%[4]s status'; cat %[5]s 2>/dev/null; echo
echo '%[4]s marker'
if [ -r %[6]s ]; then cat %[6]s; elif [ -e %[6]s ]; then sudo -n cat %[6]s; else echo '<missing>'; fi
`, exec.Quote(resultJSON), polls, cloudInitPoll.Seconds(), sectionMark, exec.Quote(statusJSON), exec.Quote(marker))
}

const sectionMark = "==guestcatalog=="

// CloudInitStatus is what the cloud-init phase read in the guest.
type CloudInitStatus struct {
	// Status: "done", "error" (cloud-init reported errors) or "degraded"
	// (only recoverable errors: warnings, deprecations).
	Status     string              `json:"status"`
	Datasource string              `json:"datasource,omitempty"`
	Errors     []string            `json:"errors,omitempty"`
	Recovered  map[string][]string `json:"recoverable_errors,omitempty"`
	// Provisioned is the marker's content ("ok", "failed: <step> exit <n>",
	// or "<missing>").
	Provisioned string `json:"provisioned"`
	// Result and StatusJSON are cloud-init's own files, as read.
	Result     json.RawMessage `json:"result_json,omitempty"`
	StatusJSON json.RawMessage `json:"status_json,omitempty"`
}

// parseCloudInitOutput splits the script's output and interprets it.
func parseCloudInitOutput(out string) (*CloudInitStatus, error) {
	sections := map[string]string{}
	var cur string
	var b strings.Builder
	flush := func() {
		if cur != "" {
			sections[cur] = strings.TrimSpace(b.String())
		}
		b.Reset()
	}
	for _, line := range strings.Split(out, "\n") {
		if name, ok := strings.CutPrefix(line, sectionMark+" "); ok {
			flush()
			cur = strings.TrimSpace(name)
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	flush()
	st := &CloudInitStatus{Provisioned: sections["marker"]}
	var result struct {
		V1 struct {
			Datasource  string              `json:"datasource"`
			Errors      []string            `json:"errors"`
			Recoverable map[string][]string `json:"recoverable_errors"`
		} `json:"v1"`
	}
	raw, ok := sections["result"]
	if !ok || raw == "" {
		return st, fmt.Errorf("cloud-init result: %s is empty", ResultJSON)
	}
	if err := json.Unmarshal([]byte(raw), &result); err != nil {
		return st, fmt.Errorf("parsing %s: %w", ResultJSON, err)
	}
	st.Result = json.RawMessage(raw)
	if s := sections["status"]; s != "" && json.Valid([]byte(s)) {
		st.StatusJSON = json.RawMessage(s)
	}
	st.Datasource = result.V1.Datasource
	st.Errors = result.V1.Errors
	st.Recovered = result.V1.Recoverable
	switch {
	case len(st.Errors) > 0:
		st.Status = "error"
	case len(st.Recovered) > 0:
		st.Status = "degraded"
	default:
		st.Status = "done"
	}
	return st, nil
}

// Problem returns why provisioning is not a success, or nil: cloud-init
// errors, a failed or missing provisioning marker.
func (s *CloudInitStatus) Problem() error {
	var problems []string
	if len(s.Errors) > 0 {
		problems = append(problems, "cloud-init reported errors: "+strings.Join(s.Errors, "; "))
	}
	switch p := strings.TrimSpace(s.Provisioned); {
	case p == "ok":
	case p == "" || p == "<missing>":
		problems = append(problems, "provisioning marker "+ProvisionedMarker+" is missing (the provisioning script did not run to its end)")
	default:
		problems = append(problems, "provisioning: "+p)
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrProvisionFailed, strings.Join(problems, "; "))
}

// RecoverableSummary lists the recoverable errors cloud-init reported
// (level: count), for a log line.
func (s *CloudInitStatus) RecoverableSummary() string {
	var parts []string
	for level, msgs := range s.Recovered {
		parts = append(parts, fmt.Sprintf("%s: %d", level, len(msgs)))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// waitCloudInit runs the in-guest wait and reads the final status once.
// maxWait bounds the in-guest loop (ctx is the phase's context, whose
// deadline is the phase timeout).
func waitCloudInit(ctx context.Context, r exec.Runner, maxWait time.Duration) (*CloudInitStatus, error) {
	if dl, ok := ctx.Deadline(); ok {
		if rem := time.Until(dl); rem < maxWait {
			maxWait = rem
		}
	}
	res, err := r.Run(ctx, exec.Cmd{Script: cloudInitScript(maxWait)})
	if err != nil {
		var re *exec.RunError
		if errors.As(err, &re) && re.ExitCode == 124 {
			return nil, fmt.Errorf("%w: cloud-init did not finish within %s (%s never appeared)", ErrPhaseTimeout, maxWait.Round(time.Second), ResultJSON)
		}
		return nil, fmt.Errorf("waiting for cloud-init: %w", err)
	}
	return parseCloudInitOutput(string(res.Stdout))
}
