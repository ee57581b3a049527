package framework

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework/config"
	"github.com/guestcatalog/guestcatalog/framework/machine"
	"github.com/guestcatalog/guestcatalog/framework/report"
)

// fetcherEngine is the engine block of the test templates that declare
// unpinned downloads.
const fetcherEngine = `engine:
  name: fetcher
  unpinned:
    - what: https://get.example.org
      reason: "the installer script; no published digest"
    - what: registry.example.org/tool:v1
      reason: "pulled by tag"
`

const unpinnedTemplates = `apiVersion: guestcatalog.dev/v1alpha1
kind: Template
name: team-fetcher
base: [images/debian-13]
` + fetcherEngine + `provision:
  - mode: system
    script: "true"
---
apiVersion: guestcatalog.dev/v1alpha1
kind: Template
name: team-pinned
base: [images/debian-13]
engine:
  name: pinned
provision:
  - mode: system
    script: "true"
`

// unpinnedRun is a Run over unpinnedTemplates with GUESTCATALOG_ALLOW_UNPINNED
// set to allow ("" leaves it unset).
func unpinnedRun(t *testing.T, allow string) *Run {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "t.yaml"), []byte(unpinnedTemplates), 0o644))
	env := config.Env{"HOME=" + t.TempDir(), config.EnvCatalog + "=" + dir}
	if allow != "" {
		env = append(env, config.EnvAllowUnpinned+"="+allow)
	}
	cfg, err := config.FromEnv(env)
	require.NoError(t, err)
	run, err := NewRun(context.Background(), cfg)
	require.NoError(t, err)
	return run
}

// Without --allow-unpinned a template that declares unpinned downloads is
// skipped, the reason naming every download and the flag; nothing is
// recorded as allowed.
func TestUnpinnedRefused(t *testing.T) {
	run := unpinnedRun(t, "")
	tmpl, err := run.Resolve("team-fetcher")
	require.NoError(t, err)
	rep := &report.Template{Template: tmpl.Name}
	reason := run.checkUnpinned(tmpl, rep)
	assert.Equal(t, "the guest downloads 2 thing(s) the catalog does not pin (engine.unpinned): https://get.example.org, registry.example.org/tool:v1; --allow-unpinned (env GUESTCATALOG_ALLOW_UNPINNED=1) runs it anyway ('catalog show team-fetcher' says why each is unpinned)", reason)
	assert.Empty(t, rep.Unpinned)

	// A template with nothing unpinned runs, with nothing recorded.
	pinned, err := run.Resolve("team-pinned")
	require.NoError(t, err)
	rep = &report.Template{Template: pinned.Name}
	assert.Empty(t, run.checkUnpinned(pinned, rep))
	assert.Empty(t, rep.Unpinned)
}

// The shipped k8s and usernetes templates are refused by default: their
// guests pull images by tag and run installers from the network.
func TestUnpinnedShippedRefused(t *testing.T) {
	cfg, err := config.FromEnv(config.Env{"HOME=" + t.TempDir()})
	require.NoError(t, err)
	run, err := NewRun(context.Background(), cfg)
	require.NoError(t, err)
	for name, want := range map[string][]string{
		"ubuntu-k8s":       {"registry.k8s.io/kube-apiserver", "registry.k8s.io/etcd", "registry.k8s.io/pause", "docker.io/flannel/flannel,", "kube-flannel.yml"},
		"ubuntu-usernetes": {"https://github.com/rootless-containers/usernetes", "https://get.docker.com", "docker.io/kindest/node"},
	} {
		tmpl, err := run.Resolve(name)
		require.NoError(t, err)
		reason := UnpinnedRefusal(run.Config(), tmpl)
		for _, w := range want {
			assert.Contains(t, reason, w, name)
		}
		assert.Contains(t, reason, AllowUnpinnedFlag, name)
	}
	// Every other shipped template installs pinned artifacts (k3s, k0s and
	// rke2 load air-gap image bundles) and signed distro packages only.
	for _, tt := range run.cat.Templates() {
		tmpl, err := run.Resolve(tt.Name)
		require.NoError(t, err)
		if e := EngineOf(tmpl); e != "k8s" && e != "usernetes" {
			assert.Empty(t, UnpinnedRefusal(run.Config(), tmpl), tmpl.Name)
		}
	}
}

// With GUESTCATALOG_ALLOW_UNPINNED=1 the template runs and report.json
// records each unpinned download with its reason.
func TestUnpinnedAllowedIsRecorded(t *testing.T) {
	run := unpinnedRun(t, "1")
	require.True(t, run.Config().AllowUnpinned)
	tmpl, err := run.Resolve("team-fetcher")
	require.NoError(t, err)
	rep := &report.Template{Template: tmpl.Name}
	assert.Empty(t, run.checkUnpinned(tmpl, rep))
	want := []report.Unpinned{
		{What: "https://get.example.org", Reason: "the installer script; no published digest"},
		{What: "registry.example.org/tool:v1", Reason: "pulled by tag"},
	}
	assert.Equal(t, want, rep.Unpinned)

	path := filepath.Join(t.TempDir(), "report.json")
	require.NoError(t, rep.WriteFile(path))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var got struct {
		Unpinned []report.Unpinned `json:"unpinned"`
	}
	require.NoError(t, json.Unmarshal(data, &got))
	assert.Equal(t, want, got.Unpinned)
}

const bootTemplate = `apiVersion: guestcatalog.dev/v1alpha1
kind: Template
name: team-fetcher
distro: {name: debian, release: "13", family: debian}
images:
  - {arch: x86_64, location: "https://example.invalid/d.qcow2", noDigest: test}
  - {arch: aarch64, location: "https://example.invalid/d-arm64.qcow2", noDigest: test}
` + fetcherEngine

// Boot itself skips the template before anything else: the spec tree of
// a template that declares unpinned downloads ends SKIPPED with the
// refusal as its reason, and no image phase started (the image is not
// even in the cache: --offline would have skipped it with another reason).
func TestBootSkipsUnpinnedFirst(t *testing.T) {
	// Ginkgo runs one suite per process and refuses go test -count=N.
	if f := flag.Lookup("test.count"); f != nil && f.Value.String() != "1" {
		t.Skip("Ginkgo runs its suite only with -count=1")
	}
	dir := t.TempDir()
	// An image only a download would bring: were the policy not first,
	// --offline would skip the template for its image.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "t.yaml"), []byte(bootTemplate), 0o644))
	cfg, err := config.FromEnv(config.Env{"HOME=" + t.TempDir(), config.EnvCatalog + "=" + dir, config.EnvOffline + "=1"})
	require.NoError(t, err)
	cfg.ReportDir = t.TempDir()
	var events []machine.Event
	run, err := NewRun(context.Background(), cfg, WithEvents(func(e machine.Event) { events = append(events, e) }))
	require.NoError(t, err)
	run.labelFilter = func() string { return "" }

	Describe("team-fetcher", Ordered, func() {
		BeforeAll(func(ctx SpecContext) { run.Boot(ctx, "team-fetcher") })
		ReportAfterEach(func(r SpecReport) { run.RecordSpec("team-fetcher", r) })
		It("never runs", func() { Fail("the guest should not have booted") })
	})
	suiteConfig, reporterConfig := GinkgoConfiguration()
	suiteConfig.LabelFilter = ""
	reporterConfig.Succinct = true
	RunSpecs(t, "unpinned", suiteConfig, reporterConfig)

	reps := run.Reports()
	require.Len(t, reps, 1)
	rep := reps[0]
	assert.Equal(t, report.Skip, rep.Result)
	assert.Contains(t, rep.Reason, "the guest downloads 2 thing(s) the catalog does not pin (engine.unpinned): https://get.example.org, registry.example.org/tool:v1; --allow-unpinned")
	assert.Empty(t, rep.Unpinned, "refused: nothing allowed to record")
	assert.Empty(t, rep.Phases, "no image phase, no boot")
	for _, e := range events {
		assert.NotEqual(t, PhaseImage, e.Phase, "nothing is downloaded: %+v", e)
	}
	data, err := os.ReadFile(filepath.Join(cfg.ReportDir, "team-fetcher", "report.json"))
	require.NoError(t, err)
	assert.Contains(t, string(data), `"result": "skip"`)
}
