package catalog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// myDocker is a user's template: its own name and engine name, the shipped
// fragments as bases, one extra package and two checks.
const myDocker = `apiVersion: guestcatalog.dev/v1alpha1
kind: Template
name: my-docker
base: [images/debian-13, engines/docker]
provision:
  - {mode: packages, packages: [hello]}
checks:
  - name: hello greets
    run: hello
    stdout: {contains: "Hello, world!"}
  - name: docker runs as root
    as: root
    run: docker info --format '{{.OperatingSystem}}'
    eventually: docker/wait-engine
`

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, writeFile(p, src))
	}
	return dir
}

// TestLoadUserTemplateOverShipped: a user file with its own name bases
// the shipped fragments, through Load; the name rule does not bind it.
func TestLoadUserTemplateOverShipped(t *testing.T) {
	dir := writeTree(t, map[string]string{"my.yaml": myDocker})
	file := filepath.Join(dir, "my.yaml")
	c, err := Load(context.Background(), WithPaths(file))
	require.NoError(t, err)
	for _, r := range c.CheckFiles() {
		assert.Empty(t, r.Errors.Strings(), r.Name) // what `catalog validate ./my.yaml` reports
	}
	tmpl, err := c.Resolve("my-docker")
	require.NoError(t, err)
	assert.Equal(t, "docker", tmpl.Engine.Name)
	assert.Equal(t, "debian", tmpl.Distro.Name)
	assert.Equal(t, []string{"hello"}, tmpl.Provision[len(tmpl.Provision)-1].Packages, "the file's step comes after its bases'")
	shipped, err := c.Resolve("debian-13-docker")
	require.NoError(t, err)
	assert.Len(t, tmpl.Provision, len(shipped.Provision)+1)
	require.Len(t, tmpl.ChecksFor(ArchX8664), 2)
	assert.Equal(t, CheckAsRoot, tmpl.Checks[1].As)

	assert.Equal(t, []string{"my-docker"}, c.TemplatesIn(file))
	assert.Equal(t, []string{"my-docker"}, c.TemplatesIn(dir), "a directory lists its files' templates")
	rel, err := filepath.Rel(mustGetwd(t), file)
	require.NoError(t, err)
	assert.Equal(t, []string{"my-docker"}, c.TemplatesIn("./"+rel), "paths compare cleaned and absolute")
	assert.Empty(t, c.TemplatesIn("catalog/templates"), "shipped templates are not in a user path")
	assert.Empty(t, c.Shadowed())

	// without the shipped catalog, the bases are unknown
	c, err = Load(context.Background(), WithPaths(dir), WithoutBuiltin())
	require.NoError(t, err)
	_, err = c.Resolve("my-docker")
	require.EqualError(t, err, file+":4:8: base[0]: unknown base \"images/debian-13\"\n"+
		file+":4:26: base[1]: unknown base \"engines/docker\"")
}

func mustGetwd(t *testing.T) string {
	wd, err := os.Getwd()
	require.NoError(t, err)
	return wd
}

// TestShippedNameRule: the <distro>-<release>[-<engine>] rule binds the
// shipped catalog (layer 0) only.
func TestShippedNameRule(t *testing.T) {
	const src = `apiVersion: guestcatalog.dev/v1alpha1
kind: Template
name: my-docker
base: [images/debian-13, engines/docker]
`
	// as a shipped document (its file name matches, so only the name rule speaks)
	docs := parseFile("catalog/templates/my-docker.yaml", []byte(src), 0)
	require.Len(t, docs, 1)
	embedded, err := loadEmbeddedDocs(context.Background())
	require.NoError(t, err)
	c := newCatalog(append(embedded, docs...))
	r, err := c.Check("my-docker")
	require.NoError(t, err)
	assert.Equal(t, []string{`catalog/templates/my-docker.yaml:3:7: name: must be "debian-13-docker", from <distro.name>-<distro.release>[-<engine.name>] (not "my-docker")`}, r.Errors.Strings())

	// the same document from a user's file
	dir := writeTree(t, map[string]string{"my.yaml": src})
	c, err = Load(context.Background(), WithPaths(dir))
	require.NoError(t, err)
	r, err = c.Check("my-docker")
	require.NoError(t, err)
	assert.Empty(t, r.Errors.Strings())
}

// TestOpenEngineName: an engine outside the shipped nine is valid from a
// user's file; its checks come from the template.
func TestOpenEngineName(t *testing.T) {
	c := loadFixture(t, "valid-checks.yaml")
	tmpl, err := c.Resolve("my-hello")
	require.NoError(t, err)
	assert.Equal(t, "hello-engine", tmpl.Engine.Name)
	assert.Equal(t, "hello --version", tmpl.Engine.VersionCommand)
}

// TestShadowed: a user's documents that take a shipped name or alias.
func TestShadowed(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"a.yaml": `apiVersion: guestcatalog.dev/v1alpha1
kind: Template
name: debian-13-docker
base: [images/debian-13, engines/docker]
---
apiVersion: guestcatalog.dev/v1alpha1
kind: Template
name: ubuntu
base: [images/debian-13]
`,
	})
	file := filepath.Join(dir, "a.yaml")
	c, err := Load(context.Background(), WithPaths(dir))
	require.NoError(t, err)
	assert.Equal(t, []Shadow{
		{Name: "debian-13-docker", Source: file + ":3:7", Builtin: "catalog/templates/debian-13-docker.yaml:7:7"},
		{Name: "ubuntu", Source: file + ":8:7", Builtin: "catalog/templates/ubuntu-24.04.yaml:9:11"},
	}, c.Shadowed())
	tmpl, err := c.Resolve("ubuntu")
	require.NoError(t, err)
	assert.Equal(t, "debian", tmpl.Distro.Name, "the user's template takes the alias")
	r, err := c.Check("ubuntu-24.04")
	require.NoError(t, err)
	assert.True(t, r.OK(), "the shipped template loses its alias without an error: %v", r.Errors)
	_, err = c.Resolve("debian-docker")
	require.Error(t, err, "a replaced template's aliases go with it")
	assert.Equal(t, []string{"debian-13-docker", "ubuntu"}, c.TemplatesIn(file))
}

// TestLayersInOrder: a later path replaces an earlier path's document; one
// path defining a name twice is an error.
func TestLayersInOrder(t *testing.T) {
	frag := func(cpus string) string {
		return "apiVersion: guestcatalog.dev/v1alpha1\nkind: Fragment\nname: images/mine\ncpus: " + cpus + "\n"
	}
	one := writeTree(t, map[string]string{"f.yaml": frag("1")})
	two := writeTree(t, map[string]string{"f.yaml": frag("3")})
	c, err := Load(context.Background(), WithPaths(one, two), WithoutBuiltin())
	require.NoError(t, err)
	fr := c.Fragments()
	require.Len(t, fr, 1)
	assert.Equal(t, 3, *fr[0].CPUs)
	assert.Empty(t, c.Shadowed(), "only shipped names are reported")

	both := writeTree(t, map[string]string{"a.yaml": frag("1"), "sub/b.yaml": frag("2")})
	_, err = Load(context.Background(), WithPaths(both, ""), WithoutBuiltin())
	require.EqualError(t, err, filepath.Join(both, "sub/b.yaml")+`:3:7: name: "images/mine" is already defined at `+filepath.Join(both, "a.yaml")+":3:7")

	_, err = Load(context.Background(), WithPaths(filepath.Join(both, "none")))
	require.EqualError(t, err, filepath.Join(both, "none")+": no such file or directory")
}

// TestLoadHonoursContext: a cancelled or expired context ends Load with
// its error, and no catalog.
func TestLoadHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c, err := Load(ctx)
	require.ErrorIs(t, err, context.Canceled)
	assert.Nil(t, c)

	files := map[string]string{}
	for i := range 50 {
		files[filepath.Join("d", string(rune('a'+i%26))+string(rune('a'+i/26))+".yaml")] = myDocker
	}
	dir := writeTree(t, files)
	ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	start := time.Now()
	c, err = Load(ctx, WithPaths(dir))
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
	assert.Nil(t, c)
	assert.Less(t, time.Since(start), time.Second)
}

// BenchmarkLoad: the shipped catalog, and the shipped catalog with a user
// directory layered over it, loaded and every template resolved.
func BenchmarkLoad(b *testing.B) {
	dir := b.TempDir()
	require.NoError(b, writeFile(filepath.Join(dir, "my.yaml"), myDocker))
	for name, opts := range map[string][]LoadOption{"builtin": nil, "builtin+user": {WithPaths(dir)}} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				c, err := Load(context.Background(), opts...)
				if err != nil {
					b.Fatal(err)
				}
				if len(c.Templates()) == 0 {
					b.Fatal("no templates")
				}
			}
		})
	}
}
