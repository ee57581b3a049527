package machine

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Event kinds.
const (
	EventStart = "start" // a phase started
	EventEnd   = "end"   // a phase ended (Result says how)
	EventStep  = "step"  // a provisioning step finished in the guest (or started: Result "")
)

// Event is one moment of a machine's start, for live progress: a phase
// starting or ending, a provisioning step the guest reports on its console.
type Event struct {
	Template string        `json:"template"`
	Kind     string        `json:"kind"`
	Phase    string        `json:"phase"`
	Step     string        `json:"step,omitempty"`
	Result   string        `json:"result,omitempty"`  // ok, failed, timeout, aborted (end, step)
	Elapsed  time.Duration `json:"elapsed,omitempty"` // the phase's or step's duration (end, step)
	Detail   string        `json:"detail,omitempty"`
	Time     time.Time     `json:"time"`
}

// provisionLineRE matches the provisioning runner's log lines as the
// console shows them (cloudinit's runner prints "guestcatalog: <UTC time>
// START|OK|FAILED <step> (...)"; cloud-init copies runcmd output to the
// console). Lines are matched anywhere: the console may prefix them.
var provisionLineRE = regexp.MustCompile(`guestcatalog: \S+ (START|OK|FAILED) (\S+)(?: \(([^)]*)\))?\s*$`)

// parseProvisionLine reads a runner line into a step event (without
// template and time).
func parseProvisionLine(line string) (Event, bool) {
	m := provisionLineRE.FindStringSubmatch(line)
	if m == nil {
		return Event{}, false
	}
	ev := Event{Kind: EventStep, Phase: PhaseCloudInit, Step: m[2]}
	switch m[1] {
	case "OK":
		ev.Result = ResultOK
		if s, err := strconv.Atoi(strings.TrimSuffix(m[3], "s")); err == nil {
			ev.Elapsed = time.Duration(s) * time.Second
		}
	case "FAILED":
		ev.Result, ev.Detail = ResultFailed, m[3]
	default:
		ev.Detail = m[3]
	}
	return ev, true
}

// emit sends ev to the machine's OnEvent, stamped with the template and
// the time.
func (m *Machine) emit(ev Event) {
	if m.cfg.OnEvent == nil {
		return
	}
	ev.Template = m.cfg.Template.Name
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	m.cfg.OnEvent(ev)
}
