package machine

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/guestcatalog/guestcatalog/framework/report"
)

func TestInfraFailureIsBeforeUserspaceOnly(t *testing.T) {
	pe := func(phase string, err error) error { return &PhaseError{Phase: phase, Template: "t", Err: err} }
	panicErr := &ConsoleFailureError{Pattern: "kernel-panic", Line: "Kernel panic - not syncing: Fatal exception in interrupt"}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{pe(PhaseLaunch, errors.New("qemu: could not load kernel")), true},
		{pe(PhaseKernel, fmt.Errorf("%w: kernel not reached", ErrPhaseTimeout)), true},
		{pe(PhaseUserspace, panicErr), true},
		{pe(PhaseUserspace, &QEMUExitError{}), true},
		{pe(PhaseLaunch, context.Canceled), false},
		{pe(PhasePrepare, errors.New("no space left on device")), false},
		{pe(PhaseSSH, panicErr), false},
		{pe(PhaseSSH, fmt.Errorf("%w: ssh", ErrPhaseTimeout)), false},
		{pe(PhaseCloudInit, ErrProvisionFailed), false},
		{pe(PhaseProbes, ErrProbeFailed), false},
		{pe(PhaseUserspace, errors.New("something else")), false},
		{errors.New("not a phase error"), false},
	} {
		assert.Equal(t, c.want, InfraFailure(c.err), "%v", c.err)
	}
}

func TestResumeFailureSaysWhy(t *testing.T) {
	_, _, ok := ResumeFailure(nil)
	assert.False(t, ok)
	r, id, ok := ResumeFailure(&PhaseError{Phase: PhaseSSH, Err: fmt.Errorf("%w: host key", ErrSavedGuestMismatch)})
	assert.True(t, ok)
	assert.True(t, id)
	assert.Equal(t, "identity check failed: phase ssh: saved guest failed its identity check: host key", r)
	r, id, _ = ResumeFailure(&PhaseError{Phase: PhaseLaunch, Err: errors.New("qemu exited: loadvm failed")})
	assert.False(t, id)
	assert.Equal(t, "resume failed: phase launch: qemu exited: loadvm failed", r)
}

func TestReportAttempts(t *testing.T) {
	flaky, att := ReportAttempts(nil, &PhaseError{Phase: PhaseSSH, Err: ErrPhaseTimeout})
	assert.False(t, flaky)
	assert.Nil(t, att)
	first := Attempt{Phase: PhaseUserspace, Error: "console shows a failure (kernel-panic)", ConsoleTail: "Kernel panic - not syncing"}
	flaky, att = ReportAttempts(nil, &PhaseError{Phase: PhaseKernel, Err: ErrPhaseTimeout, ConsoleTail: "SeaBIOS", Attempts: []Attempt{first}})
	assert.True(t, flaky)
	if assert.Len(t, att, 2) {
		assert.Equal(t, report.Fail, att[0].Result)
		assert.Equal(t, "Kernel panic - not syncing", att[0].ConsoleTail)
		assert.Equal(t, PhaseKernel, att[1].Phase)
		assert.Equal(t, "SeaBIOS", att[1].ConsoleTail)
	}
	m := &Machine{attempts: []Attempt{first}, artifacts: t.TempDir()}
	flaky, att = ReportAttempts(m, nil)
	assert.True(t, flaky)
	if assert.Len(t, att, 2) {
		assert.Equal(t, report.Pass, att[1].Result)
	}
}
