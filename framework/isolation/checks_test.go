package isolation

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/exec"
)

// fakeGuest answers scripts by the first rule whose key the script
// contains; it can act on the host (a leaky mount) through the rule func.
type fakeGuest struct {
	rules []rule
}

type rule struct {
	contains string
	answer   func(cmd exec.Cmd) string
}

func (f *fakeGuest) Run(_ context.Context, cmd exec.Cmd) (exec.Result, error) {
	for _, r := range f.rules {
		if strings.Contains(cmd.Script, r.contains) {
			return exec.Result{Stdout: []byte(r.answer(cmd))}, nil
		}
	}
	return exec.Result{}, nil
}

func say(s string) func(exec.Cmd) string { return func(exec.Cmd) string { return s } }

func newCanaries(t *testing.T) *Canaries {
	c, err := NewCanaries(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestCanaries(t *testing.T) {
	c := newCanaries(t)
	assert.Len(t, c.Token, 32)
	b, err := os.ReadFile(c.File)
	require.NoError(t, err)
	assert.Equal(t, c.Token+"\n", string(b))
	conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", itoa(c.Port)))
	require.NoError(t, err)
	got, _ := io.ReadAll(conn)
	conn.Close()
	assert.Equal(t, c.Token+"\n", string(got), "the loopback canary answers the token")
	assert.True(t, strings.HasPrefix(c.EnvName, "GUESTCATALOG_CANARY_"))

	_, err = NewCanaries([]string{os.TempDir()})
	assert.ErrorContains(t, err, "overlaps mount", "the canary must be outside every mount")

	require.NoError(t, c.Close())
	_, err = os.Stat(c.Dir)
	assert.True(t, os.IsNotExist(err))
	_, err = net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", itoa(c.Port)), time.Second)
	assert.Error(t, err)
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestEachCheckFailsOnItsLeak: every property is NotHeld on the guest
// answer it exists to catch, and Held on a clean one.
func TestEachCheckFailsOnItsLeak(t *testing.T) {
	c := newCanaries(t)
	work, ref := t.TempDir(), t.TempDir()
	mounts := []Mount{{HostPath: work, GuestPath: "/workspace", Tag: "mount0", Writable: true}, {HostPath: ref, GuestPath: "/reference", Tag: "mount1"}}
	proxyTmpl := &catalog.Template{Name: "t", CPUs: ptr(2), Memory: "2GiB", Network: &catalog.Network{Egress: catalog.EgressProxy, Allow: []string{"deb.debian.org"}}}
	in := func(g *fakeGuest) Input {
		return Input{Guest: g, Template: proxyTmpl, Mounts: mounts, Canaries: c, Targets: EgressTargets{Host: "deb.debian.org", IPv4: "192.0.2.10", IPv6: "2001:db8::10"}}
	}
	// hostWrite makes a fake guest script act on the host side of a mount,
	// as a leaky share would.
	hostWrite := func(dir, name string) func(exec.Cmd) string {
		return func(exec.Cmd) string { _ = os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); return "" }
	}
	for _, tc := range []struct {
		prop        string
		check       func(context.Context, Input) (Status, string)
		leak, clean []rule
	}{
		{PropCredNoToken, checkTokenNowhere,
			[]rule{{"read -r T", say("file /etc/leak\ndone\n")}},
			[]rule{{"read -r T", say("done\n")}}},
		{PropMountsOnlyDeclared, checkOnlyDeclaredMounts,
			[]rule{{"/proc/mounts", say("mount mount0 /workspace\nmount mount1 /reference\nmount hostroot /mnt\ntag mount0 -\ntag mount1 -\ntag hostroot -\n")}},
			[]rule{{"/proc/mounts", say("mount mount0 /workspace\nmount mount1 /reference\ntag mount0 -\ntag mount1 -\n")}}},
		{PropMountsReadOnlyOnHost, checkReadOnlyOnHost,
			[]rule{{"remount,rw", hostWrite(ref, ".gc-isolation-ro-"+c.Token[:8])}},
			[]rule{{"remount,rw", say("Read-only file system")}}},
		{PropMountsSymlinkOnHost, checkSymlinks,
			[]rule{{"ln -sfn", func(exec.Cmd) string {
				_ = os.Symlink(c.Dir, filepath.Join(work, ".gc-isolation-link-"+c.Token[:8]))
				return ""
			}}},
			[]rule{{"ln -sfn", hostWrite(work, ".gc-isolation-link-"+c.Token[:8])}}},
		{PropMountsWritable, checkWritable,
			[]rule{{"written-by-guest", say("")}},
			[]rule{{"written-by-guest", func(exec.Cmd) string {
				_ = os.WriteFile(filepath.Join(work, ".gc-isolation-write-"+c.Token[:8]), []byte("written-by-guest\n"), 0o644)
				return ""
			}}}},
		{PropCredNoForwarding, checkNoForwarding,
			[]rule{{"SSH_AUTH_SOCK", say("agent=/tmp/ssh-x/agent.1\ndisplay=\n")}},
			[]rule{{"SSH_AUTH_SOCK", say("agent=\ndisplay=\n")}}},
		{PropResources, checkResources,
			[]rule{{"nproc", say("4\n2000000\n")}},
			[]rule{{"nproc", say("2\n2010000\n")}}},
		{PropNetHostLoopback, checkHostLoopback,
			[]rule{{"10.0.2.2", say("10.0.2.2 open " + c.Token + "\n10.0.2.3 closed\n")}},
			[]rule{{"10.0.2.2", say("10.0.2.2 closed\n10.0.2.3 closed\n")}}},
		{PropNetMetadata, checkMetadata,
			[]rule{{"169.254.169.254", say("169.254.169.254:80 open HTTP/1.0 200 OK\n")}},
			[]rule{{"169.254.169.254", say("169.254.169.254:80 closed\n")}}},
		{PropNetDirectEgress, checkDirectEgress,
			[]rule{{"192.0.2.10", say("192.0.2.10:80 open HTTP/1.1 200\n192.0.2.10:443 closed\n")}},
			[]rule{{"192.0.2.10", say("192.0.2.10:80 closed\n192.0.2.10:443 closed\n")}}},
		{PropNetDNS, checkGuestDNS,
			[]rule{{"getent", say("151.101.2.132 STREAM deb.debian.org\n")}},
			[]rule{{"getent", say("unresolved\n")}}},
		{PropNetIPv6, checkIPv6,
			[]rule{{"ip -6", say("global=2001:db8::15/64\n[2001:db8::10]:80 open HTTP\n")}},
			[]rule{{"ip -6", say("global=\n[2001:db8::10]:80 closed\n")}}},
		{PropNetPolicy, checkPolicy,
			[]rule{{"curl", say("200")}}, // everything passes: the denied host too
			[]rule{{"http://deb.debian.org/", say("200")}, {"https://", say("000 exit=56")}, {"curl", say("403")}}},
	} {
		t.Run(tc.prop, func(t *testing.T) {
			st, detail := tc.check(context.Background(), in(&fakeGuest{rules: tc.leak}))
			assert.Equal(t, NotHeld, st, "leak: %s", detail)
			st, detail = tc.check(context.Background(), in(&fakeGuest{rules: tc.clean}))
			assert.Equal(t, Held, st, "clean: %s", detail)
		})
	}
}

func TestAfterFlushAndPolicyNone(t *testing.T) {
	c := newCanaries(t)
	tmpl := &catalog.Template{Name: "t", Network: &catalog.Network{Egress: catalog.EgressNone}}
	flushed := false
	g := &fakeGuest{rules: []rule{
		{"nft flush", func(exec.Cmd) string { flushed = true; return "" }},
		{"10.0.2.2", func(exec.Cmd) string {
			if flushed {
				return "10.0.2.2 open " + c.Token
			}
			return "10.0.2.2 closed"
		}},
	}}
	st, detail := checkAfterFlush(context.Background(), Input{Guest: g, Template: tmpl, Canaries: c})
	assert.Equal(t, NotHeld, st, "a policy the guest's root can flush is not held: %s", detail)

	st, _ = checkPolicy(context.Background(), Input{Guest: &fakeGuest{rules: []rule{{"10.0.2.100", say("proxy open HTTP/1.1 400")}}}, Template: tmpl, Canaries: c})
	assert.Equal(t, NotHeld, st, "egress none yet a proxy answers")
	st, _ = checkPolicy(context.Background(), Input{Guest: &fakeGuest{rules: []rule{{"10.0.2.100", say("proxy closed")}}}, Template: tmpl, Canaries: c})
	assert.Equal(t, Held, st)
}

func TestTeardown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dir := t.TempDir()
	r := CheckTeardown(Leftovers{QEMUPid: os.Getpid(), ProxyAddr: ln.Addr().String(), RunDir: dir})
	assert.Equal(t, NotHeld, r.Status)
	assert.Contains(t, r.Detail, "still runs")
	assert.Contains(t, r.Detail, "still accepts connections")
	assert.Contains(t, r.Detail, "still exists")
	ln.Close()
	r = CheckTeardown(Leftovers{ProxyAddr: ln.Addr().String(), RunDir: filepath.Join(dir, "gone")})
	assert.Equal(t, Held, r.Status, r.Detail)
}

func TestRunNeedsInputs(t *testing.T) {
	_, err := Run(context.Background(), Input{})
	assert.EqualError(t, err, "isolation.Run: Input.Guest, Template and Canaries must be set")
}

func ptr[T any](v T) *T { return &v }

func TestEveryPropertyHasACheck(t *testing.T) {
	cs := checks()
	assert.Len(t, cs, len(Properties()))
	for _, p := range Properties() {
		assert.NotNil(t, cs[p], p)
	}
}
