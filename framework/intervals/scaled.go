package intervals

import (
	"fmt"
	"strings"
	"time"
)

// ResolveScaled is Resolve for a bound written in a template's
// `eventually:` (probes, checks): an interval name is looked up with Get,
// and a duration ("90s") is scaled by the accelerator like every interval,
// since a template's author writes it for native speed.
func (s *Set) ResolveScaled(value, accel string) (time.Duration, error) {
	v := strings.TrimSpace(value)
	d, err := time.ParseDuration(v)
	if err != nil {
		return s.Resolve(value, accel)
	}
	if d <= 0 {
		return 0, fmt.Errorf("interval %q: must be positive", value)
	}
	return time.Duration(float64(d) * s.Scale(accel)), nil
}
