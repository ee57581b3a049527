package workflow

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/rhysd/actionlint"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/ci/matrix"
)

// checkedIn is the workflow in the repository, from this package's directory.
var checkedIn = filepath.Join("..", "..", filepath.FromSlash(Path))

func generated(t *testing.T) []byte {
	t.Helper()
	b, err := Generate()
	require.NoError(t, err)
	return b
}

func TestCheckedInWorkflowIsUpToDate(t *testing.T) {
	want := generated(t)
	got, err := os.ReadFile(checkedIn)
	require.NoError(t, err, "%s is missing: run `go generate ./ci/...`", Path)
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from what ci/workflow generates (first difference: %s).\n"+
			"Do not edit it by hand: change ci/workflow and run `go generate ./ci/...` (or `make generate`).",
			Path, firstDifference(got, want))
	}
}

func firstDifference(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + strconv.Itoa(i+1) + ": checked in " + quote(gl) + ", generated " + quote(wl)
		}
	}
	return "none"
}

func quote(s string) string { return "`" + s + "`" }

// TestActionlint lints the generated workflow and the checked-in file with
// actionlint's Go API, no subprocess (and shellcheck on the run scripts, when
// installed). It takes a fraction of a second, so it runs under -short too.
func TestActionlint(t *testing.T) {
	opts := &actionlint.LinterOptions{LogWriter: io.Discard}
	if sc, err := exec.LookPath("shellcheck"); err == nil {
		opts.Shellcheck = sc
	} else {
		t.Log("shellcheck not installed: run scripts are not shell-checked")
	}
	var out bytes.Buffer
	l, err := actionlint.NewLinter(&out, opts)
	require.NoError(t, err)

	errs, err := l.Lint("<generated nightly.yml>", generated(t), nil)
	require.NoError(t, err)
	assert.Empty(t, errs, "actionlint:\n%s", out.String())

	if _, err := os.Stat(checkedIn); err == nil {
		out.Reset()
		errs, err = l.LintFile(checkedIn, nil)
		require.NoError(t, err)
		assert.Empty(t, errs, "actionlint %s:\n%s", Path, out.String())
	}
}

// TestActionlintCatchesMistakes proves the lint test can fail.
func TestActionlintCatchesMistakes(t *testing.T) {
	bad := bytes.Replace(generated(t), []byte("needs.matrix.outputs.matrix"), []byte("needs.matrx.outputs.matrix"), 1)
	l, err := actionlint.NewLinter(io.Discard, &actionlint.LinterOptions{LogWriter: io.Discard})
	require.NoError(t, err)
	errs, err := l.Lint("<bad>", bad, nil)
	require.NoError(t, err)
	require.NotEmpty(t, errs)
	assert.Contains(t, errs[0].Message, "matrx")
}

type parsed struct {
	On   map[string]any `yaml:"on"`
	Jobs map[string]struct {
		Needs          []string          `yaml:"needs"`
		If             string            `yaml:"if"`
		RunsOn         string            `yaml:"runs-on"`
		TimeoutMinutes any               `yaml:"timeout-minutes"`
		Env            map[string]string `yaml:"env"`
		Outputs        map[string]string `yaml:"outputs"`
		Strategy       struct {
			FailFast *bool  `yaml:"fail-fast"`
			Matrix   string `yaml:"matrix"`
		} `yaml:"strategy"`
		Steps []struct {
			Name string            `yaml:"name"`
			ID   string            `yaml:"id"`
			If   string            `yaml:"if"`
			Uses string            `yaml:"uses"`
			With map[string]any    `yaml:"with"`
			Env  map[string]string `yaml:"env"`
			Run  string            `yaml:"run"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

func parse(t *testing.T) parsed {
	t.Helper()
	var p parsed
	require.NoError(t, yaml.Unmarshal(generated(t), &p))
	return p
}

func TestWorkflowShape(t *testing.T) {
	p := parse(t)
	assert.Contains(t, p.On, "schedule")
	assert.Contains(t, p.On, "workflow_dispatch")
	require.Contains(t, p.Jobs, "matrix")
	require.Contains(t, p.Jobs, "verify")
	require.Contains(t, p.Jobs, "summary")

	m := p.Jobs["matrix"]
	assert.Equal(t, "${{ steps.matrix.outputs.matrix }}", m.Outputs["matrix"])
	assert.Contains(t, m.Steps[len(m.Steps)-1].Run, "go run ./cmd/catalog matrix")

	v := p.Jobs["verify"]
	assert.Equal(t, []string{"matrix"}, v.Needs)
	assert.Equal(t, "${{ fromJSON(needs.matrix.outputs.matrix) }}", v.Strategy.Matrix)
	require.NotNil(t, v.Strategy.FailFast)
	assert.False(t, *v.Strategy.FailFast)
	assert.Equal(t, "${{ matrix.runner }}", v.RunsOn)
	assert.Equal(t, "${{ matrix.timeout }}", v.TimeoutMinutes)
	assert.Equal(t, "1", v.Env["GUESTCATALOG_REQUIRE_TOOLS"])

	steps := map[string]int{}
	for i, s := range v.Steps {
		steps[s.Name] = i
	}
	kvm := v.Steps[steps["Enable KVM"]]
	assert.Contains(t, kvm.Run, "/etc/udev/rules.d/99-kvm4all.rules")
	install := v.Steps[steps["Install QEMU and the image tools"]]
	assert.Contains(t, install.Run, "./.ci/install-deps")
	assert.Contains(t, install.Run, "qemu-system-arm")
	restore, save := v.Steps[steps["Restore cached images"]], v.Steps[steps["Save cached images"]]
	assert.Equal(t, "${{ matrix.cacheKey }}", restore.With["key"])
	assert.Equal(t, restore.With, save.With, "restore and save the same path and key")
	assert.Equal(t, "${{ env.GUESTCATALOG_CACHE }}/downloads\n${{ env.GUESTCATALOG_CACHE }}/images\n", restore.With["path"],
		"images only: provisioned disks are not carried over")
	verify := v.Steps[steps["Verify ${{ matrix.template }}"]]
	assert.Contains(t, verify.Run, `go run ./cmd/catalog verify "$TEMPLATE"`)
	assert.Contains(t, verify.Run, "--report-dir")
	assert.Contains(t, verify.Run, "--artifacts")
	assert.Contains(t, verify.Run, "--offline")
	assert.Equal(t, "${{ matrix.allowUnpinned }}", verify.Env["ALLOW_UNPINNED"])
	assert.Contains(t, verify.Run, `if [ "$ALLOW_UNPINNED" = true ]; then args+=(--allow-unpinned); fi`,
		"rows whose template declares unpinned downloads run explicitly allowed")
	assert.Less(t, steps["Restore cached images"], steps["Verify ${{ matrix.template }}"])
	assert.Less(t, steps["Verify ${{ matrix.template }}"], steps["Save cached images"])
	assert.Equal(t, "${{ always() }}", v.Steps[steps["Upload the report and JUnit"]].If, "JUnit always")
	assert.Equal(t, "${{ failure() }}", v.Steps[steps["Upload failure artifacts"]].If, "artifacts on failure")
	assert.Contains(t, v.Steps[steps["Summary"]].Run, "catalog report summary")
	assert.Contains(t, v.Steps[steps["Summary"]].Run, "$GITHUB_STEP_SUMMARY")

	s := p.Jobs["summary"]
	assert.Equal(t, "${{ always() }}", s.If)
	assert.ElementsMatch(t, []string{"matrix", "images", "verify"}, s.Needs)
}

// TestActionsArePinnedByMajorVersion keeps every `uses:` on a known action at
// a major version tag.
func TestActionsArePinnedByMajorVersion(t *testing.T) {
	allowed := map[string]string{
		"actions/checkout": "v4", "actions/setup-go": "v5", "actions/cache/restore": "v4",
		"actions/cache/save": "v4", "actions/upload-artifact": "v4", "actions/download-artifact": "v4",
	}
	uses := regexp.MustCompile(`(?m)^\s*(?:- )?uses: (\S+)@(\S+)$`).FindAllStringSubmatch(string(generated(t)), -1)
	require.NotEmpty(t, uses)
	for _, u := range uses {
		want, ok := allowed[u[1]]
		if assert.True(t, ok, "unexpected action %s", u[1]) {
			assert.Equal(t, want, u[2], "%s", u[1])
		}
	}
}

// TestMatrixFieldsExist ties the workflow to ci/matrix: every `matrix.X` the
// workflow reads is a field of matrix.Entry, and every field is read.
func TestMatrixFieldsExist(t *testing.T) {
	fields := map[string]bool{}
	et := reflect.TypeFor[matrix.Entry]()
	for i := range et.NumField() {
		name, _, _ := strings.Cut(et.Field(i).Tag.Get("json"), ",")
		if name != "-" && name != "" {
			fields[name] = false
		}
	}
	refs := regexp.MustCompile(`(?:^|[^.\w])matrix\.([A-Za-z]+)`).FindAllStringSubmatch(string(generated(t)), -1)
	for _, r := range refs {
		_, ok := fields[r[1]]
		assert.True(t, ok, "the workflow reads matrix.%s, which ci/matrix does not emit", r[1])
		fields[r[1]] = true
	}
	var unused []string
	for f, used := range fields {
		if !used {
			unused = append(unused, f)
		}
	}
	sort.Strings(unused)
	assert.Empty(t, unused, "matrix fields the workflow never reads")
}

func TestGenerateIsDeterministic(t *testing.T) {
	assert.Equal(t, generated(t), generated(t))
	assert.True(t, bytes.HasPrefix(generated(t), []byte("# Code generated by")), "marked as generated")
}
