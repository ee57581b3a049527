package instance

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// up of a template with egress: proxy, then — after Up returned, its
// machine detached — the guest reaches the allowlist through the detached
// proxy helper (deb.debian.org answers 200) and nothing else (example.com
// is refused); down leaves no helper and no listener. Before the helper,
// the proxy lived in Up's machine and ended with it: the first curl failed.
func TestIntegrationUpEgressProxy(t *testing.T) {
	f := savedGuestOf(t, mountTemplate)
	s := testStore(t)
	downAll(t, s)
	ctx := t.Context()
	specs, err := ParseMounts([]string{t.TempDir() + ":/workspace", t.TempDir() + ":/reference:ro"})
	require.NoError(t, err)

	start := time.Now()
	inst, err := s.Up(ctx, UpInput{Guest: f.guest, Mounts: specs, Intervals: f.ivs})
	require.NoError(t, err)
	t.Logf("up in %s", time.Since(start).Round(time.Millisecond))
	got, err := s.Get(inst.Name)
	require.NoError(t, err)

	curl := func(url string) (int, string) {
		t.Helper()
		var o, e bytes.Buffer
		code, err := got.Exec(ctx, []string{"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "60",
			"-x", "http://10.0.2.100:3128", url}, Streams{Stdout: &o, Stderr: &e})
		require.NoError(t, err)
		return code, strings.TrimSpace(o.String() + " " + e.String())
	}
	cstart := time.Now()
	code, out := curl("http://deb.debian.org/debian/")
	t.Logf("allowed curl: exit %d, %q in %s", code, out, time.Since(cstart).Round(time.Millisecond))
	assert.Equal(t, 0, code, out)
	assert.Equal(t, "200", out)
	code, out = curl("https://example.com/")
	t.Logf("refused curl: exit %d, %q", code, out)
	assert.NotEqual(t, 0, code, "example.com was reached: %s", out)
	assert.Contains(t, out, "403")
	require.NotZero(t, inst.Proxy.PID, "no proxy helper recorded")
	require.True(t, inst.Proxy.Alive(), "the proxy helper is not running")
	assert.Equal(t, inst.Proxy, got.Proxy)

	log, err := os.ReadFile(filepath.Join(inst.Dir, LogsDir, ProxyLogFile))
	require.NoError(t, err)
	assert.Contains(t, string(log), `"host":"deb.debian.org"`)
	assert.Contains(t, string(log), `"host":"example.com"`)

	res, err := s.Down(ctx, inst.Name, DownInput{Intervals: f.ivs})
	require.NoError(t, err)
	t.Logf("down: %s in %s", res.How, res.Duration.Round(time.Millisecond))
	assert.False(t, inst.Proxy.Alive(), "the proxy helper outlived down")
	assert.False(t, listening(inst.ProxyAddr), "the proxy's listener outlived down")
	assert.False(t, inst.QEMU.Alive())
	assert.NoDirExists(t, inst.Dir)
}
