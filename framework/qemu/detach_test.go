package qemu

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/guestcatalog/guestcatalog/framework/intervals"
)

// A QEMU started WithDetached leads its own session (so neither a
// terminal's Ctrl-C nor its hangup reaches it) and survives Detach, the
// end of its start context and a later Shutdown; QMPCommand from outside
// then stops it. The default start is the input that fails each of these:
// it is in our session and dies with its context.
func TestIntegrationDetached(t *testing.T) {
	requireQEMU(t)
	spec := kernelSpec(t, idleInit)
	ctx, cancel := context.WithCancel(t.Context())
	inst, err := Start(ctx, spec, WithRunRoot(testRoot(t)), WithDetached())
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(inst.PID(), syscall.SIGKILL) })
	pid := inst.PID()
	sid, err := unix.Getsid(pid)
	require.NoError(t, err)
	assert.Equal(t, pid, sid, "detached qemu leads its own session")
	start, err := ProcessStart(pid)
	require.NoError(t, err)

	require.NoError(t, inst.Detach())
	assert.True(t, inst.isReleased())
	cancel()
	require.NoError(t, inst.Shutdown(context.Background(), 0))
	time.Sleep(500 * time.Millisecond)
	assert.True(t, ProcessAlive(pid, start), "qemu runs on after Detach, ctx end and Shutdown")
	assert.FileExists(t, inst.Spec().QMPSocket)

	qctx, qcancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer qcancel()
	out, err := QMPCommand(qctx, inst.Spec().QMPSocket, "query-status", nil)
	require.NoError(t, err)
	assert.Contains(t, string(out), `"running"`)
	_, err = QMPCommand(qctx, inst.Spec().QMPSocket, "quit", nil)
	require.NoError(t, err)
	select {
	case <-inst.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("qemu did not quit")
	}
	assert.False(t, ProcessAlive(pid, start))
}

func TestIntegrationNotDetachedDiesWithContext(t *testing.T) {
	requireQEMU(t)
	spec := kernelSpec(t, idleInit)
	ctx, cancel := context.WithCancel(t.Context())
	inst, err := Start(ctx, spec, WithRunRoot(testRoot(t)))
	require.NoError(t, err)
	sid, err := unix.Getsid(inst.PID())
	require.NoError(t, err)
	assert.NotEqual(t, inst.PID(), sid)
	assert.True(t, errors.Is(inst.Detach(), ErrNotDetached))
	cancel()
	select {
	case <-inst.Exited():
	case <-time.After(30 * time.Second):
		t.Fatal("qemu outlived its context")
	}
	require.NoError(t, inst.Shutdown(context.Background(), 0))
}

// A resumed spec waits for QMP as long as default/loadvm; a booting one
// only default/qmp-connect (the input that fails: a spec without LoadVM).
func TestConnectTimeoutCoversLoadVM(t *testing.T) {
	ivs, err := intervals.Default()
	require.NoError(t, err)
	boot, err := connectTimeout(ivs, Spec{Accel: AccelTCG})
	require.NoError(t, err)
	resume, err := connectTimeout(ivs, Spec{Accel: AccelTCG, LoadVM: "ready"})
	require.NoError(t, err)
	assert.Equal(t, ivs.MustGet("default/qmp-connect", AccelTCG), boot)
	assert.Equal(t, ivs.MustGet("default/loadvm", AccelTCG), resume)
	assert.Greater(t, resume, boot)
}
