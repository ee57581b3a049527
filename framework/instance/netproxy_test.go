package instance

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/guestcatalog/guestcatalog/framework/qemu"
)

// TestMain lets this test binary serve as the proxy helper
// (DefaultProxyHelper is os.Executable, ProxyHelperCommand): what the
// catalog binary's hidden command does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == ProxyHelperCommand {
		os.Exit(proxyHelperMain(os.Args[2:]))
	}
	os.Exit(m.Run())
}

func proxyHelperMain(args []string) int {
	fs := flag.NewFlagSet(ProxyHelperCommand, flag.ContinueOnError)
	dir := fs.String("instance-dir", "", "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := ServeProxy(ctx, *dir, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	return 0
}

// standIn is a process standing in for an instance's QEMU (or its
// starting process): a sleep, reaped when it ends.
func standIn(t *testing.T) (Proc, func()) {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	st, err := qemu.ProcessStart(cmd.Process.Pid)
	require.NoError(t, err)
	kill := func() { _ = cmd.Process.Kill(); <-done }
	t.Cleanup(kill)
	return Proc{PID: cmd.Process.Pid, Start: st}, kill
}

// proxyInstance reserves an instance whose "QEMU" is qemuProc (zero: the
// record stays starting, owned by creator) and starts its proxy helper,
// allowing allow.
func proxyInstance(t *testing.T, s *Store, name string, creator, qemuProc Proc, allow []string) (*Instance, time.Duration) {
	t.Helper()
	rec := Record{Template: "stand-in", Arch: "x86_64", Created: time.Now().UTC(), BootID: qemu.BootID(), Creator: creator}
	dir, err := s.reserve(name, rec)
	require.NoError(t, err)
	rec.Format, rec.Name, rec.State = Format, name, StateStarting
	start := time.Now()
	p, addr, err := startProxyHelper(context.Background(), nil, dir, ProxyConfig{Allow: allow})
	took := time.Since(start)
	require.NoError(t, err)
	t.Cleanup(func() { _ = stopProxyHelper(p) })
	rec.Proxy, rec.ProxyAddr = p, addr
	if qemuProc.PID > 0 {
		rec.State, rec.QEMU = StateRunning, qemuProc
	}
	require.NoError(t, writeRecord(dir, &rec))
	return &Instance{Record: rec, Dir: dir}, took
}

func proxyGet(t *testing.T, proxyAddr, target string) (int, error) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: proxyAddr}),
	}}
	resp, err := c.Get(target)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// waitFalse polls f for up to d.
func waitFalse(f func() bool, d time.Duration) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < d {
		if !f() {
			return time.Since(start), true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start), !f()
}

// The helper serves the instance's allowlist after the process that
// started it moved on, logs its decisions to the instance's logs, and
// exits (closing its listener) within a second of the instance's QEMU
// exiting.
func TestProxyHelperLivesAndDiesWithQEMU(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	defer target.Close()
	s := testStore(t)
	self, err := Self()
	require.NoError(t, err)
	vm, killVM := standIn(t)
	tu, _ := url.Parse(target.URL)
	inst, took := proxyInstance(t, s, "px", self, vm, []string{tu.Host})
	t.Logf("helper listening %.0f ms after start", took.Seconds()*1000)
	require.True(t, inst.Proxy.Alive())

	code, err := proxyGet(t, inst.ProxyAddr, target.URL)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code, "allowed destination")
	code, err = proxyGet(t, inst.ProxyAddr, "http://example.com/")
	require.NoError(t, err)
	assert.Equal(t, http.StatusForbidden, code, "destination not in the allowlist")

	// Its own session: no terminal signal of the CLI reaches it.
	sid, err := unix.Getsid(inst.Proxy.PID)
	require.NoError(t, err)
	assert.Equal(t, inst.Proxy.PID, sid)

	killVM()
	d, gone := waitFalse(inst.Proxy.Alive, 3*time.Second)
	require.True(t, gone, "the helper outlived its QEMU")
	t.Logf("helper exited %.0f ms after its QEMU", d.Seconds()*1000)
	assert.Less(t, d, time.Second)
	assert.False(t, listening(inst.ProxyAddr), "the proxy still listens")

	log, err := os.ReadFile(filepath.Join(inst.Dir, LogsDir, ProxyLogFile))
	require.NoError(t, err)
	assert.Contains(t, string(log), `"host":"example.com"`)
	assert.Contains(t, string(log), `"allowed":false`)
	assert.Contains(t, string(log), "the instance is dead")
}

// Down stops the helper (after QEMU): no process and no listener remain.
func TestDownStopsProxyHelper(t *testing.T) {
	s := testStore(t)
	self, err := Self()
	require.NoError(t, err)
	vm, _ := standIn(t)
	inst, _ := proxyInstance(t, s, "px", self, vm, []string{"deb.debian.org"})
	require.True(t, listening(inst.ProxyAddr))
	res, err := s.Down(context.Background(), "px", DownInput{Force: true})
	require.NoError(t, err)
	t.Logf("down: %s in %.2fs", res.How, res.Duration.Seconds())
	assert.False(t, inst.Proxy.Alive(), "helper left running")
	assert.False(t, vm.Alive(), "qemu stand-in left running")
	assert.False(t, listening(inst.ProxyAddr), "listener left")
	assert.NoDirExists(t, inst.Dir)
}

// A helper whose instance is still starting lives while the starting
// process does, and exits when it dies before the guest was ready.
func TestProxyHelperExitsWithDeadCreator(t *testing.T) {
	s := testStore(t)
	creator, killCreator := standIn(t)
	inst, _ := proxyInstance(t, s, "px", creator, Proc{}, nil)
	time.Sleep(3 * proxyPoll)
	require.True(t, inst.Proxy.Alive(), "helper of a starting instance stopped")
	killCreator()
	_, gone := waitFalse(inst.Proxy.Alive, 3*time.Second)
	assert.True(t, gone, "helper outlived the process starting its instance")
}

// A removed instance directory ends the helper too, and so does SIGTERM,
// within a second.
func TestProxyHelperExitsOnRemoveAndSIGTERM(t *testing.T) {
	s := testStore(t)
	self, err := Self()
	require.NoError(t, err)
	vm, _ := standIn(t)
	a, _ := proxyInstance(t, s, "a", self, vm, nil)
	b, _ := proxyInstance(t, s, "b", self, vm, nil)
	require.NoError(t, os.RemoveAll(a.Dir))
	_, gone := waitFalse(a.Proxy.Alive, 3*time.Second)
	assert.True(t, gone, "helper outlived its instance directory")
	require.NoError(t, syscall.Kill(b.Proxy.PID, syscall.SIGTERM))
	d, gone := waitFalse(b.Proxy.Alive, 3*time.Second)
	assert.True(t, gone)
	assert.Less(t, d, time.Second, "SIGTERM took %s", d)
}

// Gc never touches a live instance's helper; it kills a dead instance's
// (here one whose helper cannot notice: SIGSTOPped) and removes it.
func TestGcProxyHelpers(t *testing.T) {
	s := testStore(t)
	self, err := Self()
	require.NoError(t, err)
	live, _ := standIn(t)
	dead, killDead := standIn(t)
	l, _ := proxyInstance(t, s, "live", self, live, nil)
	d, _ := proxyInstance(t, s, "dead", self, dead, nil)
	require.NoError(t, syscall.Kill(d.Proxy.PID, syscall.SIGSTOP))
	killDead()
	res, err := s.Gc(context.Background(), false)
	require.NoError(t, err)
	var removed []string
	for _, e := range res.Removed {
		removed = append(removed, e.Name)
	}
	assert.Equal(t, "dead", strings.Join(removed, ","))
	assert.True(t, l.Proxy.Alive(), "gc killed a live instance's helper")
	assert.True(t, listening(l.ProxyAddr))
	assert.False(t, d.Proxy.Alive(), "gc left a dead instance's helper")
	assert.NoDirExists(t, d.Dir)
}

// A helper that cannot start its proxy (a bad allowlist) fails Up's start
// at once, with its log named, and leaves no process.
func TestProxyHelperStartFails(t *testing.T) {
	s := testStore(t)
	self, err := Self()
	require.NoError(t, err)
	dir, err := s.reserve("bad", Record{Creator: self, BootID: qemu.BootID()})
	require.NoError(t, err)
	_, _, err = startProxyHelper(context.Background(), nil, dir, ProxyConfig{Allow: []string{"http://not an entry"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), ProxyLogFile)
	_, _, err = startProxyHelper(context.Background(), []string{"/nonexistent/helper"}, dir, ProxyConfig{})
	require.Error(t, err)
}

// Gc kills a helper whose instance directory is gone and that did not stop
// by itself (SIGSTOPped here); a dry run only lists it. The helper of a
// running instance and that of a starting one (whose record may not name
// it yet) are left alone.
func TestGcOrphanProxyHelper(t *testing.T) {
	s := testStore(t)
	self, err := Self()
	require.NoError(t, err)
	vm, _ := standIn(t)
	live, _ := proxyInstance(t, s, "live", self, vm, nil)
	starting, _ := proxyInstance(t, s, "starting", self, Proc{}, nil)
	rec := starting.Record
	rec.Proxy, rec.ProxyAddr = Proc{}, ""
	require.NoError(t, writeRecord(starting.Dir, &rec))
	gone, _ := proxyInstance(t, s, "gone", self, vm, nil)
	require.NoError(t, syscall.Kill(gone.Proxy.PID, syscall.SIGSTOP))
	require.NoError(t, os.RemoveAll(gone.Dir))

	res, err := s.Gc(context.Background(), true)
	require.NoError(t, err)
	require.Len(t, res.Removed, 1, "%+v", res.Removed)
	assert.Equal(t, "gone", res.Removed[0].Name)
	assert.Contains(t, res.Removed[0].Reason, fmt.Sprint(gone.Proxy.PID))
	assert.True(t, gone.Proxy.Alive(), "a dry run killed it")

	res, err = s.Gc(context.Background(), false)
	require.NoError(t, err)
	require.Len(t, res.Removed, 1, "%+v", res.Removed)
	assert.False(t, gone.Proxy.Alive(), "gc left an orphan helper")
	assert.True(t, live.Proxy.Alive(), "gc killed a running instance's helper")
	assert.True(t, starting.Proxy.Alive(), "gc killed a starting instance's helper")
}

func TestHelperDir(t *testing.T) {
	d, ok := helperDir([]string{"/usr/bin/catalog", ProxyHelperCommand, "--instance-dir", "/c/instances/box"})
	assert.True(t, ok)
	assert.Equal(t, "/c/instances/box", d)
	for _, argv := range [][]string{
		{"/usr/bin/catalog", "up", "--instance-dir", "/c/instances/box"},
		{"/usr/bin/catalog", ProxyHelperCommand, "--instance-dir", "relative"},
		{"/usr/bin/catalog", ProxyHelperCommand, "--instance-dir"},
		{"/usr/bin/catalog", ProxyHelperCommand, "--instance-dir", "/c/instances/box", "extra"},
	} {
		_, ok := helperDir(argv)
		assert.False(t, ok, "%q", argv)
	}
}
