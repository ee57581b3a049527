package machine

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework/exec"
)

const resultOK = `{"v1": {"datasource": "DataSourceNoCloud [seed=/dev/vdb]", "errors": []}}`

func TestCloudInitScriptWaitsThenReadsOnce(t *testing.T) {
	dir := t.TempDir()
	result := filepath.Join(dir, "result.json")
	status := filepath.Join(dir, "status.json")
	marker := filepath.Join(dir, "provisioned")
	require.NoError(t, os.WriteFile(status, []byte(`{"v1": {"stage": null}}`), 0o644))
	require.NoError(t, os.WriteFile(marker, []byte("ok\n"), 0o644))
	script := cloudInitScriptFor(10*time.Second, result, status, marker)

	// result.json appears 500 ms after the wait started: noticed within a poll.
	appeared := make(chan time.Time, 1)
	go func() {
		time.Sleep(500 * time.Millisecond)
		_ = os.WriteFile(result+".tmp", []byte(resultOK), 0o644)
		appeared <- time.Now()
		_ = os.Rename(result+".tmp", result)
	}()
	res, err := (&exec.Host{}).Run(context.Background(), exec.Script(script))
	require.NoError(t, err)
	lag := time.Since(<-appeared)
	assert.Less(t, lag, 600*time.Millisecond, "noticed %s after cloud-init finished", lag)
	st, err := parseCloudInitOutput(string(res.Stdout))
	require.NoError(t, err)
	assert.Equal(t, "done", st.Status)
	assert.Equal(t, "ok", st.Provisioned)
	assert.Contains(t, st.Datasource, "NoCloud")
	assert.JSONEq(t, `{"v1": {"stage": null}}`, string(st.StatusJSON))
	assert.NoError(t, st.Problem())
}

func TestCloudInitScriptBounded(t *testing.T) {
	dir := t.TempDir()
	script := cloudInitScriptFor(400*time.Millisecond, filepath.Join(dir, "never"), filepath.Join(dir, "s"), filepath.Join(dir, "m"))
	start := time.Now()
	_, err := (&exec.Host{}).Run(context.Background(), exec.Script(script))
	assert.Equal(t, 124, exec.ExitCode(err))
	assert.Less(t, time.Since(start), 3*time.Second)
}

func TestParseCloudInitOutput(t *testing.T) {
	out := sectionMark + " result\n" +
		`{"v1": {"datasource": "DataSourceNoCloud", "errors": ["('scripts_user', RuntimeError('Runparts: 1 failures'))"], "recoverable_errors": {"WARNING": ["a", "b"]}}}` + "\n" +
		sectionMark + " status\n\n" + sectionMark + " marker\nfailed: install docker exit 100\n"
	st, err := parseCloudInitOutput(out)
	require.NoError(t, err)
	assert.Equal(t, "error", st.Status)
	assert.Equal(t, "failed: install docker exit 100", st.Provisioned)
	assert.Equal(t, "WARNING: 2", st.RecoverableSummary())
	perr := st.Problem()
	require.ErrorIs(t, perr, ErrProvisionFailed)
	assert.Contains(t, perr.Error(), "scripts_user")
	assert.Contains(t, perr.Error(), "install docker exit 100")

	st, err = parseCloudInitOutput(sectionMark + " result\n" + `{"v1": {"errors": [], "recoverable_errors": {"DEPRECATED": ["x"]}}}` + "\n" + sectionMark + " status\n" + sectionMark + " marker\n<missing>\n")
	require.NoError(t, err)
	assert.Equal(t, "degraded", st.Status)
	assert.ErrorContains(t, st.Problem(), "marker")

	_, err = parseCloudInitOutput(sectionMark + " result\nnot json\n")
	assert.ErrorContains(t, err, "parsing")
}
