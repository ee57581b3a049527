package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/framework/config"
)

// unpinnedTemplate has an image that is never in the test's cache, so
// --offline ends at the image (exit 1, "no image for") once the unpinned
// policy has let the template through: nothing is downloaded or booted.
const unpinnedTemplate = `apiVersion: guestcatalog.dev/v1alpha1
kind: Template
name: team-fetcher
distro: {name: debian, release: "13", family: debian}
images:
  - {arch: x86_64, location: "https://example.invalid/d.qcow2", noDigest: test}
  - {arch: aarch64, location: "https://example.invalid/d-arm64.qcow2", noDigest: test}
engine:
  name: fetcher
  unpinned:
    - what: https://get.example.invalid
      reason: "the installer script; no published digest"
    - what: registry.example.invalid/tool:v1
      reason: "pulled by tag"
provision:
  - mode: system
    script: "true"
`

func writeUnpinnedTemplate(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fetcher.yaml")
	require.NoError(t, os.WriteFile(p, []byte(unpinnedTemplate), 0o644))
	return p
}

// up and run refuse a template with unpinned downloads, naming each and
// the flag, before the image is looked at (exit 2, usage: the flag is
// missing).
func TestUpRunRefuseUnpinned(t *testing.T) {
	file := writeUnpinnedTemplate(t)
	cache := "GUESTCATALOG_CACHE=" + t.TempDir()
	for _, args := range [][]string{
		{"up", "--offline", file},
		{"run", "--rm", "--offline", file, "--", "true"},
		{"up", "--offline", "ubuntu-k8s"},
		{"run", "--rm", "--offline", "ubuntu-usernetes", "--", "true"},
	} {
		_, stderr, code := runCLIEnv(t, []string{cache}, args...)
		assert.Equal(t, ExitUsage, code, "%v: %s", args, stderr)
		assert.Contains(t, stderr, "SKIPPED: the guest downloads", args)
		assert.Contains(t, stderr, "--allow-unpinned", args)
		assert.NotContains(t, stderr, "no image for", "%v: decided before the image", args)
		if args[len(args)-1] == file || slices.Contains(args, file) {
			assert.Contains(t, stderr, "team-fetcher SKIPPED: the guest downloads 2 thing(s) the catalog does not pin (engine.unpinned): https://get.example.invalid, registry.example.invalid/tool:v1;", args)
		}
	}
	_, stderr, _ := runCLIEnv(t, []string{cache}, "up", "--offline", "ubuntu-k8s")
	for _, what := range []string{"registry.k8s.io/kube-apiserver", "registry.k8s.io/coredns/coredns", "docker.io/flannel/flannel-cni-plugin"} {
		assert.Contains(t, stderr, what)
	}
}

// --allow-unpinned (or GUESTCATALOG_ALLOW_UNPINNED=1) lets the template
// through the policy: up then goes on to the image, which --offline does
// not have here.
func TestUpRunAllowUnpinned(t *testing.T) {
	file := writeUnpinnedTemplate(t)
	cache := "GUESTCATALOG_CACHE=" + t.TempDir()
	for _, tc := range []struct {
		env  []string
		args []string
	}{
		{[]string{cache}, []string{"up", "--offline", "--allow-unpinned", file}},
		{[]string{cache, config.EnvAllowUnpinned + "=1"}, []string{"up", "--offline", file}},
		{[]string{cache}, []string{"run", "--rm", "--offline", "--allow-unpinned", file, "--", "true"}},
	} {
		_, stderr, code := runCLIEnv(t, tc.env, tc.args...)
		assert.NotContains(t, stderr, "SKIPPED", tc.args)
		assert.Contains(t, stderr, "no image for team-fetcher/", "%v: past the policy, at the image", tc.args)
		assert.NotEqual(t, ExitOK, code)
	}
	// The flag overrides the environment.
	_, stderr, code := runCLIEnv(t, []string{cache, config.EnvAllowUnpinned + "=1"}, "up", "--offline", "--allow-unpinned=false", file)
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, stderr, "SKIPPED")
}

// verify carries --allow-unpinned (default from the environment) into the
// run's configuration and into each --parallel child's command line.
func TestVerifyAllowUnpinnedConfig(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		args []string
		want bool
	}{
		{nil, nil, false},
		{nil, []string{"--allow-unpinned"}, true},
		{[]string{config.EnvAllowUnpinned + "=yes"}, nil, true},
		{[]string{config.EnvAllowUnpinned + "=yes"}, []string{"--allow-unpinned=false"}, false},
	} {
		env := testEnv(append([]string{"GUESTCATALOG_CACHE=" + t.TempDir()}, tc.env...)...)
		cfg, err := config.Parse(env)
		require.NoError(t, err)
		a := &app{env: env, envCfg: cfg}
		root := newRootCmd(a)
		root.SetOut(&discard{})
		verify, _, err := root.Find([]string{"verify"})
		require.NoError(t, err)
		require.NoError(t, verify.ParseFlags(tc.args))
		v, err := verify.Flags().GetBool("allow-unpinned")
		require.NoError(t, err)
		o := verifyOptions{allowUnpinned: v}
		c := a.verifyConfig(o)
		assert.Equal(t, tc.want, c.AllowUnpinned, "%v %v", tc.env, tc.args)
		child := a.childArgs(o, &verifyPlan{cfg: c}, "debian-containerd", "/r", false)
		assert.Contains(t, child, "--allow-unpinned="+map[bool]string{true: "true", false: "false"}[tc.want], "%v %v", tc.env, tc.args)
	}
}

// list -o json and show -o json expose engine.unpinned through the normal
// struct encoding; only the k8s and usernetes templates declare any.
func TestListShowExposeUnpinned(t *testing.T) {
	stdout, stderr, code := runCLI(t, "list", "-o", "json")
	require.Equal(t, ExitOK, code, stderr)
	var entries []struct {
		Name     string `json:"name"`
		Engine   string `json:"engine"`
		Unpinned []struct {
			What   string `json:"what"`
			Reason string `json:"reason"`
		} `json:"unpinned"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &entries))
	seen := map[string]bool{}
	for _, e := range entries {
		switch e.Engine {
		case "k8s", "usernetes":
			seen[e.Engine] = true
			require.NotEmpty(t, e.Unpinned, e.Name)
			for _, u := range e.Unpinned {
				assert.NotEmpty(t, u.What, e.Name)
				assert.NotEmpty(t, u.Reason, e.Name)
			}
		default:
			assert.Empty(t, e.Unpinned, e.Name)
		}
	}
	assert.Equal(t, map[string]bool{"k8s": true, "usernetes": true}, seen)

	stdout, stderr, code = runCLI(t, "show", "-o", "json", "ubuntu-usernetes")
	require.Equal(t, ExitOK, code, stderr)
	assert.Contains(t, stdout, `"unpinned"`)
	assert.Contains(t, stdout, `"what": "https://get.docker.com"`)
}
