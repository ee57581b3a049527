package matrix

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func fixture(t *testing.T) []*catalog.Template {
	t.Helper()
	b, err := os.ReadFile("testdata/catalog.yaml")
	require.NoError(t, err)
	var ts []*catalog.Template
	require.NoError(t, yaml.UnmarshalWithOptions(b, &ts, yaml.Strict()))
	return ts
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file; run go test ./ci/matrix -update")
	assert.Equal(t, string(want), string(got), "%s differs; run go test ./ci/matrix -update and review the diff", path)
}

func TestBuildGolden(t *testing.T) {
	cases := []struct {
		golden string
		opts   Options
	}{
		{"nightly.golden.json", Options{}},
		{"all-aarch64.golden.json", Options{Tier: TierAll, Arches: []string{"aarch64"}}},
		{"nightly-shard-1-of-2.golden.json", Options{Shard: Shard{1, 2}}},
		{"nightly-shard-2-of-2.golden.json", Options{Shard: Shard{2, 2}}},
		{"experimental.golden.json", Options{Tier: catalog.TierExperimental}},
	}
	for _, c := range cases {
		t.Run(c.golden, func(t *testing.T) {
			m, err := Build(fixture(t), c.opts)
			require.NoError(t, err)
			var buf bytes.Buffer
			require.NoError(t, m.WriteJSON(&buf, true))
			golden(t, c.golden, buf.Bytes())
		})
	}
}

func TestBuildSelectsNightlyTemplatesPerArch(t *testing.T) {
	m, err := Build(fixture(t), Options{})
	require.NoError(t, err)
	var got []string
	for _, e := range m.Include {
		got = append(got, e.Template+"/"+e.Arch)
	}
	// Sorted by template, x86_64 before aarch64; no experimental template,
	// no fragment, no arch without an image.
	assert.Equal(t, []string{
		"debian-13-containerd/x86_64", "debian-13-containerd/aarch64",
		"debian-13-docker/x86_64", "debian-13-docker/aarch64",
		"ubuntu-24.04-k3s/x86_64", "ubuntu-24.04-k3s/aarch64",
		"ubuntu-24.04-k8s/x86_64",
	}, got)

	byKey := map[string]Entry{}
	for _, e := range m.Include {
		byKey[e.Template+"/"+e.Arch] = e
	}
	assert.Equal(t, "ubuntu-24.04", byKey["debian-13-docker/x86_64"].Runner)
	assert.Equal(t, "ubuntu-24.04-arm", byKey["debian-13-docker/aarch64"].Runner)
	assert.True(t, byKey["debian-13-docker/x86_64"].Offline, "x86_64 has a build recipe")
	assert.False(t, byKey["debian-13-docker/aarch64"].Offline, "aarch64 has only a URL")
	assert.False(t, byKey["ubuntu-24.04-k3s/x86_64"].Offline, "k3s requires the internet")
	assert.True(t, byKey["ubuntu-24.04-k8s/x86_64"].AllowUnpinned, "k8s declares unpinned downloads: the workflow passes --allow-unpinned")
	for k, e := range byKey {
		if k != "ubuntu-24.04-k8s/x86_64" {
			assert.False(t, e.AllowUnpinned, "%s declares no unpinned download", k)
		}
	}
	assert.Equal(t, 45, byKey["debian-13-docker/x86_64"].Timeout)
	assert.Equal(t, 90, byKey["debian-13-docker/aarch64"].Timeout, "aarch64 doubles")
	assert.Equal(t, 90, byKey["ubuntu-24.04-k8s/x86_64"].Timeout, "kubeadm gets longer")
	// Two templates on the same image share the cache key.
	assert.Equal(t, byKey["ubuntu-24.04-k3s/x86_64"].CacheKey, byKey["ubuntu-24.04-k8s/x86_64"].CacheKey)
	assert.NotEqual(t, byKey["debian-13-docker/x86_64"].CacheKey, byKey["debian-13-containerd/x86_64"].CacheKey,
		"docker bakes its packages into the image")
}

func TestMatrixJSONIsWhatGitHubExpects(t *testing.T) {
	m, err := Build(fixture(t), Options{})
	require.NoError(t, err)
	var compact bytes.Buffer
	require.NoError(t, m.WriteJSON(&compact, false))
	assert.Equal(t, 1, bytes.Count(compact.Bytes(), []byte("\n")), "one line for $GITHUB_OUTPUT")

	var generic map[string][]map[string]any
	require.NoError(t, json.Unmarshal(compact.Bytes(), &generic))
	require.Len(t, generic["include"], 7)
	first := generic["include"][0]
	assert.ElementsMatch(t, []string{"template", "arch", "runner", "timeout", "offline", "allowUnpinned", "cacheKey"}, keys(first))
	assert.Equal(t, false, first["allowUnpinned"])
	assert.Equal(t, "debian-13-containerd", first["template"])
	assert.Equal(t, float64(45), first["timeout"])
	assert.Equal(t, true, first["offline"])
	assert.Regexp(t, `^images-x86_64-[0-9a-f]{20}$`, first["cacheKey"])

	var out bytes.Buffer
	require.NoError(t, m.WriteGitHubOutput(&out))
	assert.Equal(t, "matrix="+compact.String()+"count=7\n", out.String())
}

func TestEmptyMatrixIsAnEmptyInclude(t *testing.T) {
	m, err := Build(nil, Options{})
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, m.WriteJSON(&buf, false))
	assert.Equal(t, "{\"include\":[]}\n", buf.String())
}

func TestBuildErrors(t *testing.T) {
	ts := fixture(t)
	_, err := Build(ts, Options{Tier: "weekly"})
	assert.EqualError(t, err, `tier "weekly": want nightly, experimental or all`)

	_, err = Build(ts, Options{Arches: []string{"riscv64"}})
	assert.ErrorIs(t, err, ErrNoRunner)
	assert.EqualError(t, err, `arch "riscv64": no runner for arch (known: aarch64, x86_64)`)

	_, err = Build(ts, Options{Runners: map[string]string{"x86_64": "big"}})
	assert.ErrorIs(t, err, ErrNoRunner)
	assert.Contains(t, err.Error(), "template debian-13-containerd: arch \"aarch64\": no runner for arch; pass --runner aarch64=LABEL")

	_, err = Build(ts, Options{Shard: Shard{3, 2}})
	assert.EqualError(t, err, "shard 3/2: want 1 ≤ i ≤ n")
}

func TestParseShard(t *testing.T) {
	for in, want := range map[string]Shard{"": {}, "1/1": {1, 1}, "2/3": {2, 3}, " 3 / 3 ": {3, 3}} {
		got, err := ParseShard(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for in, msg := range map[string]string{
		"1":   `shard "1": want i/n, e.g. 1/3`,
		"a/b": `shard "a/b": want i/n, e.g. 1/3`,
		"0/2": "shard 0/2: want 1 ≤ i ≤ n",
		"3/2": "shard 3/2: want 1 ≤ i ≤ n",
		"1/0": "shard 1/0: want 1 ≤ i ≤ n",
	} {
		_, err := ParseShard(in)
		assert.EqualError(t, err, msg, in)
	}
}

func TestSplitIsCompleteBalancedAndDeterministic(t *testing.T) {
	var entries []Entry
	estimates := []int{35, 12, 15, 20, 30, 15, 12, 70, 24, 35, 15, 40, 12, 12, 30, 20, 15}
	for i, est := range estimates {
		entries = append(entries, Entry{Template: string(rune('a' + i)), Arch: "x86_64", Estimate: est})
	}
	for n := 1; n <= 5; n++ {
		shards := Split(entries, n)
		require.Len(t, shards, n)
		assert.Equal(t, shards, Split(entries, n), "deterministic")

		seen := map[string]int{}
		lo, hi, maxEst := 1<<30, 0, 0
		for _, s := range shards {
			for _, e := range s {
				seen[e.Template]++
				maxEst = max(maxEst, e.Estimate)
			}
			lo, hi = min(lo, Minutes(s)), max(hi, Minutes(s))
		}
		assert.Len(t, seen, len(entries), "n=%d: every entry in a shard", n)
		for k, c := range seen {
			assert.Equal(t, 1, c, "n=%d: %s in exactly one shard", n, k)
		}
		// Longest-first greedy keeps the spread within the largest job.
		assert.LessOrEqual(t, hi-lo, maxEst, "n=%d: loads %d..%d", n, lo, hi)
		for _, s := range shards {
			for i := 1; i < len(s); i++ {
				assert.Less(t, s[i-1].Template, s[i].Template, "shards keep the matrix order")
			}
		}
	}
	// More shards than entries: the surplus shards are empty, not missing.
	shards := Split(entries[:2], 4)
	assert.Len(t, shards, 4)
	assert.Empty(t, shards[3])
	assert.NotNil(t, shards[3])
}

func TestCacheKeyFollowsImages(t *testing.T) {
	base := catalog.Template{Name: "a", Images: []catalog.Image{
		{Arch: "x86_64", Location: "https://example.org/a.qcow2", Digest: "sha256:" + sixtyfour("a")},
		{Arch: "aarch64", Location: "https://example.org/b.qcow2", Digest: "sha256:" + sixtyfour("b")},
	}}
	k := CacheKey(&base, "x86_64")
	other := base
	other.Name = "b"
	assert.Equal(t, k, CacheKey(&other, "x86_64"), "the name does not matter")
	assert.NotEqual(t, k, CacheKey(&base, "aarch64"))

	changed := base
	changed.Images = append([]catalog.Image(nil), base.Images...)
	changed.Images[0].Digest = "sha256:" + sixtyfour("c")
	assert.NotEqual(t, k, CacheKey(&changed, "x86_64"), "a new digest is a new key")
	assert.Equal(t, CacheKey(&base, "aarch64"), CacheKey(&changed, "aarch64"))

	built := catalog.Template{Images: []catalog.Image{{Arch: "x86_64", Build: &catalog.BuildRecipe{Suite: "trixie", Bake: true}}},
		Provision: []catalog.Step{{Mode: catalog.ModePackages, Packages: []string{"podman"}}}}
	k1 := CacheKey(&built, "x86_64")
	built.Provision[0].Packages = []string{"docker.io"}
	assert.NotEqual(t, k1, CacheKey(&built, "x86_64"), "baked packages are part of the image")
	built.Images[0].Build.Bake = false
	k2 := CacheKey(&built, "x86_64")
	built.Provision[0].Packages = []string{"podman"}
	assert.Equal(t, k2, CacheKey(&built, "x86_64"), "packages installed at boot are not")
}

func TestBudgets(t *testing.T) {
	b := DefaultBudgets()
	assert.Equal(t, Budget{Estimate: 15, Timeout: 45}, b.For("docker", "nightly", "x86_64"))
	assert.Equal(t, Budget{Estimate: 30, Timeout: 90}, b.For("docker", "nightly", "aarch64"))
	assert.Equal(t, Budget{Estimate: 15, Timeout: 60}, b.For("docker", "experimental", "x86_64"))
	assert.Equal(t, Budget{Estimate: 12, Timeout: 45}, b.For("", "nightly", "x86_64"), "no engine: default")
	assert.Equal(t, Budget{Estimate: 12, Timeout: 45}, b.For("new-engine", "nightly", "riscv64"), "unknown: default, factor 1")
	b.MaxTimeout = 100
	assert.Equal(t, 100, b.For("k8s", "experimental", "aarch64").Timeout, "capped")
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sixtyfour(c string) string {
	out := ""
	for len(out) < 64 {
		out += c
	}
	return out
}
