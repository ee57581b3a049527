package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/stretchr/testify/require"
)

// buildCatalog builds this command into a temporary directory.
func buildCatalog(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "catalog")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, string(out))
	return bin
}

// A signal ends any command within a second: 130 for SIGINT, 143 for
// SIGTERM. The command here is a pull stuck on a server that never answers.
func TestSignalsEndCommandsWithinASecond(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildCatalog(t)
	hang := make(chan struct{})
	asked := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked <- struct{}{}
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(hang)
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, ExitInterrupted}, {syscall.SIGTERM, ExitTerminated}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			cmd := exec.Command(bin, "pull", "ubuntu-24.04", "--mirror", "https://cloud-images.ubuntu.com/="+srv.URL+"/")
			cmd.Env = append(testEnv(), "GUESTCATALOG_CACHE="+t.TempDir())
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			require.NoError(t, cmd.Start())
			select { // loaded, downloading
			case <-asked:
			case <-time.After(30 * time.Second):
				t.Fatal("no download started")
			}
			sent := time.Now()
			require.NoError(t, cmd.Process.Signal(tc.sig))
			err := cmd.Wait()
			took := time.Since(sent)
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, stderr.String())
			assert.Equal(t, tc.code, ee.ExitCode(), stderr.String())
			assert.Less(t, took, time.Second)
			t.Logf("%s: exit %d after %s", tc.sig, ee.ExitCode(), took.Round(time.Millisecond))
		})
	}
}

// verify --parallel waits for each child's output and passes lines of any
// length (a bufio.Scanner stops at 64 KiB and the child then blocks).
func TestVerifyParallelCopiesLongLines(t *testing.T) {
	dir := t.TempDir()
	child := filepath.Join(dir, "child.sh")
	// The stand-in child prints a 200 KiB line, then a last line without a
	// newline, and exits without a report.
	script := "#!/bin/sh\nhead -c 204800 /dev/zero | tr '\\0' x; echo; printf 'done %s' \"$2\"\n"
	require.NoError(t, os.WriteFile(child, []byte(script), 0o755))
	var out, errOut bytes.Buffer
	a := &app{streams: IOStreams{Out: &out, ErrOut: &errOut}, self: child, env: testEnv()}
	cfg := a.config()
	cfg.CacheDir = t.TempDir()
	cfg.ArtifactsDir = t.TempDir()
	cat, err := catalog.Load(context.Background())
	require.NoError(t, err)
	p := &verifyPlan{cfg: cfg, cat: cat, names: []string{"one", "two"}}
	done := make(chan error, 1)
	go func() {
		done <- a.verifyParallel(context.Background(), &out, verifyOptions{parallel: 2, timeout: time.Minute}, p)
	}()
	select {
	case err := <-done:
		assert.Equal(t, exitError{ExitFailed}, err, "no child left a report")
	case <-time.After(20 * time.Second):
		t.Fatal("verify --parallel hangs on a long line")
	}
	long := "x" + strings.Repeat("x", 204799)
	for _, n := range []string{"one", "two"} {
		assert.Contains(t, out.String(), "["+n+"] "+long+"\n")
		assert.Contains(t, out.String(), "["+n+"] done "+n+"\n")
	}
}

// verify --parallel --output json: the children's event lines reach stdout
// untouched, their human lines stderr behind their template.
func TestVerifyParallelJSONEvents(t *testing.T) {
	dir := t.TempDir()
	child := filepath.Join(dir, "child.sh")
	script := "#!/bin/sh\nfor a; do [ \"$a\" = json ] && j=1; done\n[ -n \"$j\" ] || exit 3\nprintf '{\"template\":\"%s\"}\\n' \"$2\"; echo \"human $2\" >&2\n"
	require.NoError(t, os.WriteFile(child, []byte(script), 0o755))
	var out, errOut bytes.Buffer
	a := &app{streams: IOStreams{Out: &out, ErrOut: &errOut}, self: child, env: testEnv()}
	cfg := a.config()
	cfg.CacheDir, cfg.ArtifactsDir = t.TempDir(), t.TempDir()
	cat, err := catalog.Load(context.Background())
	require.NoError(t, err)
	p := &verifyPlan{cfg: cfg, cat: cat, names: []string{"one", "two"}}
	o := verifyOptions{parallel: 2, timeout: time.Minute, output: outputOptions{format: outputJSON, defFmt: outputTable, formats: []string{outputTable, outputJSON}}}
	_ = a.verifyParallel(context.Background(), &out, o, p)
	assert.Contains(t, out.String(), "{\"template\":\"one\"}\n")
	assert.Contains(t, out.String(), "{\"template\":\"two\"}\n")
	assert.NotContains(t, out.String(), "human")
	assert.Contains(t, errOut.String(), "[one] human one\n")
	assert.Contains(t, errOut.String(), "TEMPLATE", "the summary goes to stderr")
}

// verify --parallel on a terminal: a live status line shows every running
// child's phase, read from the children's JSON event lines, while their
// human lines scroll above it. Not a terminal: no status line at all.
func TestVerifyParallelTTYStatusLine(t *testing.T) {
	dir := t.TempDir()
	child := filepath.Join(dir, "child.sh")
	script := `#!/bin/sh
for a; do [ "$a" = json ] && j=1; done
[ -n "$j" ] || { echo "human $2 (no events asked)" >&2; exit 0; }
phase=kernel; [ "$2" = two ] && phase=ssh
printf '{"time":"%s","template":"%s","kind":"start","phase":"%s"}\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" "$2" "$phase"
echo "human $2" >&2
sleep 2
`
	require.NoError(t, os.WriteFile(child, []byte(script), 0o755))
	cat, err := catalog.Load(context.Background())
	require.NoError(t, err)
	for _, tty := range []bool{true, false} {
		t.Run(map[bool]string{true: "terminal", false: "pipe"}[tty], func(t *testing.T) {
			var out, errOut bytes.Buffer
			a := &app{streams: IOStreams{Out: &out, ErrOut: &errOut}, self: child, env: testEnv(),
				terminal: func(io.Writer) bool { return tty }}
			cfg := a.config()
			cfg.CacheDir, cfg.ArtifactsDir = t.TempDir(), t.TempDir()
			p := &verifyPlan{cfg: cfg, cat: cat, names: []string{"one", "two"}}
			_ = a.verifyParallel(context.Background(), &out, verifyOptions{parallel: 2, timeout: time.Minute}, p)
			s := out.String()
			if !tty {
				assert.NotContains(t, s, "\x1b[K", "a pipe gets no status line")
				assert.Contains(t, s, "[one] human one (no events asked)\n")
				return
			}
			assert.Contains(t, s, "[one] human one\n")
			assert.Contains(t, s, "[two] human two\n")
			assert.NotContains(t, s, `{"time"`, "event lines feed the status line, they are not printed")
			var both bool
			for _, frame := range strings.Split(s, "\r\x1b[K") {
				if strings.Contains(frame, "[one] kernel") && strings.Contains(frame, "[two] ssh") {
					both = true
				}
			}
			assert.True(t, both, "one status line shows both running children:\n%q", s)
		})
	}
}
