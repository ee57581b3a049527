package catalog

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loadFixture loads one testdata file alone (without the shipped catalog).
func loadFixture(t *testing.T, name string) *Catalog {
	t.Helper()
	c, _ := load(false, []string{filepath.Join("testdata", name)})
	require.NotNil(t, c)
	return c
}

// allProblems checks the whole catalog and returns every error and warning,
// formatted, in the order of the results.
func allProblems(c *Catalog) (errs, warns []string) {
	for _, r := range c.CheckAll() {
		errs = append(errs, r.Errors.Strings()...)
		warns = append(warns, r.Warnings.Strings()...)
	}
	return errs, warns
}

// TestInvalidFixtures pins the exact messages for each invalid fixture:
// position, field path and wording are the interface users see.
func TestInvalidFixtures(t *testing.T) {
	tests := []struct {
		file  string
		errs  []string
		warns []string
	}{{
		file: "invalid-unknown-field.yaml",
		errs: []string{
			`testdata/invalid-unknown-field.yaml:6:5: images[0].locaton: unknown field "locaton" (did you mean location?)`,
			`testdata/invalid-unknown-field.yaml:7:5: images[0].sha265: unknown field "sha265"`,
			`testdata/invalid-unknown-field.yaml:11:3: distro.version: unknown field "version"`,
		},
	}, {
		file: "invalid-duplicate-key.yaml",
		errs: []string{
			`testdata/invalid-duplicate-key.yaml:6:3: duplicate key "name" (first defined at testdata/invalid-duplicate-key.yaml:5:3)`,
		},
	}, {
		file: "invalid-type.yaml",
		errs: []string{
			`testdata/invalid-type.yaml:4:7: cpus: must be an integer, not a string`,
			`testdata/invalid-type.yaml:6:9: user.sudo: must be true or false, not a string`,
			`testdata/invalid-type.yaml:11:18: provision[0].permissions: must be a string, not an integer (quote it: "0644")`,
			`testdata/invalid-type.yaml:12:15: portForwards: must be a list, not a mapping`,
			`testdata/invalid-type.yaml:17:7: cpus: must be an integer, not a string`,
		},
	}, {
		file: "invalid-api-version.yaml",
		errs: []string{
			`testdata/invalid-api-version.yaml:9:1: apiVersion: must be set to guestcatalog.dev/v1alpha1`,
			`testdata/invalid-api-version.yaml:6:7: kind: must be Template or Fragment, not "Tempalte"`,
			`testdata/invalid-api-version.yaml:1:13: apiVersion: must be guestcatalog.dev/v1alpha1, not "guestcatalog.dev/v1"`,
		},
	}, {
		file: "invalid-digest.yaml",
		errs: []string{
			`testdata/invalid-digest.yaml:5:5: images[0].digest: must be set (or noDigest must say why)`,
			`testdata/invalid-digest.yaml:9:13: images[1].digest: must be sha256:<64 hex digits> or sha512:<128 hex digits>, not "sha256:0123"`,
			`testdata/invalid-digest.yaml:12:13: images[2].digest: must be sha256:<64 hex digits> or sha512:<128 hex digits>, not "md5:0123456789abcdef0123456789abcdef"`,
			`testdata/invalid-digest.yaml:14:15: images[3].location: must be an http(s) URL, not "ftp://example.org/both.qcow2"`,
			`testdata/invalid-digest.yaml:16:15: images[3].noDigest: must not be set together with digest`,
		},
	}, {
		file: "invalid-base-cycle.yaml",
		errs: []string{
			`testdata/invalid-base-cycle.yaml:10:5: base[0]: cycle in base: engines/a -> engines/b -> engines/a`,
			`testdata/invalid-base-cycle.yaml:4:8: base[0]: cycle in base: engines/b -> engines/a -> engines/b`,
		},
	}, {
		file: "invalid-unknown-base.yaml",
		errs: []string{
			`testdata/invalid-unknown-base.yaml:9:8: base[0]: unknown base "images/debian-99"`,
			`testdata/invalid-unknown-base.yaml:9:26: base[1]: unknown base "engines/dockr" (did you mean engines/docker?)`,
		},
	}, {
		file: "invalid-param-name.yaml",
		errs: []string{
			`testdata/invalid-param-name.yaml:6:13: params.bad-name: must be a param name (^[A-Za-z_][A-Za-z0-9_]*$): scripts read it as PARAM_<name>`,
			`testdata/invalid-param-name.yaml:7:11: params["9lives"]: must be a param name (^[A-Za-z_][A-Za-z0-9_]*$): scripts read it as PARAM_<name>`,
			`testdata/invalid-param-name.yaml:9:12: env.PARAM_x: the PARAM_ prefix is reserved for params`,
			`testdata/invalid-param-name.yaml:10:10: env["A B"]: must be an environment variable name (^[A-Za-z_][A-Za-z0-9_]*$)`,
		},
	}, {
		file: "invalid-size.yaml",
		errs: []string{
			`testdata/invalid-size.yaml:4:9: memory: invalid size "2 gigs": want a number and a unit (B, KiB, MiB, GiB, TiB, K, M, G, T), e.g. 2GiB`,
			`testdata/invalid-size.yaml:5:7: disk: must be at least 1GiB, not 512MiB`,
			`testdata/invalid-size.yaml:6:7: cpus: must be at least 1, not 0`,
			`testdata/invalid-size.yaml:11:9: memory: must be at least 256MiB, not 128MiB`,
			`testdata/invalid-size.yaml:12:7: disk: invalid size "1.5.0G": want a number and a unit (B, KiB, MiB, GiB, TiB, K, M, G, T), e.g. 2GiB`,
		},
	}, {
		file: "invalid-data-step.yaml",
		errs: []string{
			`testdata/invalid-data-step.yaml:5:5: provision[0].path: must be set for a data step`,
			`testdata/invalid-data-step.yaml:8:11: provision[1].path: must be a clean absolute path, not "etc/relative"`,
			`testdata/invalid-data-step.yaml:10:18: provision[1].permissions: must be octal like "0644" (^0[0-7]{3}$), not "644"`,
			`testdata/invalid-data-step.yaml:11:13: provision[1].script: only system, user and boot steps have script (this step is mode data)`,
			`testdata/invalid-data-step.yaml:12:5: provision[2].script: must be set for a system step`,
			`testdata/invalid-data-step.yaml:13:11: provision[2].path: only data steps have path (this step is mode system)`,
			`testdata/invalid-data-step.yaml:14:5: provision[3].packages: must list at least one package`,
			`testdata/invalid-data-step.yaml:15:11: provision[4].mode: must be one of system, user, boot, data, packages, not "shell"`,
		},
	}, {
		file: "invalid-location-and-build.yaml",
		errs: []string{
			`testdata/invalid-location-and-build.yaml:5:5: images[0]: set either location or build, not both`,
			`testdata/invalid-location-and-build.yaml:10:5: images[1]: must set location (a URL) or build (a local recipe)`,
			`testdata/invalid-location-and-build.yaml:10:11: images[1].arch: must be one of x86_64, aarch64, not "riscv64"`,
			`testdata/invalid-location-and-build.yaml:11:15: images[1].firmware: must be one of bios, uefi, not "coreboot"`,
		},
	}, {
		file: "invalid-alias-collision.yaml",
		errs: []string{
			`testdata/invalid-alias-collision.yaml:12:11: aliases[0]: "debian" is also an alias of debian-99-docker (testdata/invalid-alias-collision.yaml:18:11)`,
			`testdata/invalid-alias-collision.yaml:18:11: aliases[0]: "debian" is also an alias of debian-99 (testdata/invalid-alias-collision.yaml:12:11)`,
			`testdata/invalid-alias-collision.yaml:18:19: aliases[1]: "debian-99" is already the name of template debian-99 (testdata/invalid-alias-collision.yaml:11:7)`,
		},
	}, {
		file: "invalid-name.yaml",
		errs: []string{
			`testdata/invalid-name.yaml:4:47: distro.family: debian is in family debian, not rhel`,
			`testdata/invalid-name.yaml:9:7: tier: must be one of nightly, experimental, not "weekly"`,
			`testdata/invalid-name.yaml:10:1: images: must list an image for x86_64 or aarch64 (in the template or one of its bases)`,
			`testdata/invalid-name.yaml:13:1: distro: must be set, with name and family (in the template or one of its bases)`,
			`testdata/invalid-name.yaml:13:1: images: must list an image for x86_64 or aarch64 (in the template or one of its bases)`,
		},
	}, {
		file: "invalid-engine-coverage.yaml",
		errs: []string{
			`testdata/invalid-engine-coverage.yaml:7:31: provision[0].when.families[1]: must be one of debian, rhel, alpine, suse, arch, not "redhat"`,
			`testdata/invalid-engine-coverage.yaml:14:40: probes[0].when.arches[0]: must be one of x86_64, aarch64, not "arm"`,
			`testdata/invalid-engine-coverage.yaml:16:14: probes[0].timeout: must be a duration (90s) or a named interval (probe, docker/wait-engine), not "5 minutes"`,
			`testdata/invalid-engine-coverage.yaml:21:1: engine: engine docker has no provisioning for distro alpine (family alpine)`,
		},
		warns: []string{
			`testdata/invalid-engine-coverage.yaml:24:71: images[0].noDigest: no digest, the download is not verified: test`,
		},
	}, {
		file: "invalid-checks.yaml",
		errs: []string{
			`testdata/invalid-checks.yaml:30:11: checks[0].name: "engine answers" is already the name of a check of engines/ok (testdata/invalid-checks.yaml:40:11)`,
			`testdata/invalid-checks.yaml:5:16: engine.name: must be a lowercase name (^[a-z][a-z0-9-]*$), not "Checked"`,
			`testdata/invalid-checks.yaml:9:9: checks[0].as: must be one of user, root, not "admin"`,
			`testdata/invalid-checks.yaml:10:15: checks[0].exitCode: must be an exit code from 0 to 255, not 256`,
			`testdata/invalid-checks.yaml:11:5: checks[0].stdout: must set only one of equals, contains or regex, not contains and regex`,
			`testdata/invalid-checks.yaml:12:5: checks[0].stderr: must set one of equals, contains or regex`,
			`testdata/invalid-checks.yaml:13:11: checks[1].name: "greets" is already the name of checks[0]`,
			`testdata/invalid-checks.yaml:14:10: checks[1].run: must be set`,
			"testdata/invalid-checks.yaml:15:21: checks[1].stdout.regex: must be a regular expression (RE2 syntax): error parsing regexp: missing closing ): `(unclosed`",
			`testdata/invalid-checks.yaml:16:17: checks[1].eventually: must be a duration (90s) or a named interval (probe, docker/wait-engine), not "5 minutes"`,
			`testdata/invalid-checks.yaml:17:5: checks[2].name: must be set`,
			`testdata/invalid-checks.yaml:18:15: checks[2].exitCode: must be an exit code from 0 to 255, not -1`,
			`testdata/invalid-checks.yaml:19:17: checks[2].eventually: must be positive, not 0s`,
			`testdata/invalid-checks.yaml:20:23: checks[2].when.families[0]: must be one of debian, rhel, alpine, suse, arch, not "redhat"`,
		},
		warns: []string{
			`testdata/invalid-checks.yaml:28:71: images[0].noDigest: no digest, the download is not verified: test`,
		},
	}, {
		file: "invalid-unpinned.yaml",
		errs: []string{
			`testdata/invalid-unpinned.yaml:9:14: engine.unpinned[1].what: must be set`,
			`testdata/invalid-unpinned.yaml:10:45: engine.unpinned[2].reason: must be set`,
			`testdata/invalid-unpinned.yaml:11:45: engine.unpinned[3].reason: must not be blank`,
			`testdata/invalid-unpinned.yaml:12:14: engine.unpinned[4].what: must be at most 512 characters, not 513`,
			`testdata/invalid-unpinned.yaml:13:45: engine.unpinned[5].reason: must be at most 512 characters, not 513`,
			`testdata/invalid-unpinned.yaml:14:14: engine.unpinned[6].what: must not contain the control character \x1b`,
			`testdata/invalid-unpinned.yaml:15:45: engine.unpinned[7].reason: must not contain the control character \a`,
			`testdata/invalid-unpinned.yaml:16:14: engine.unpinned[8].what: must be one URL or image reference, without spaces, not "git clone https://f.example.org"`,
			`testdata/invalid-unpinned.yaml:17:14: engine.unpinned[9].what: "https://get.example.org" is already declared by engine.unpinned[0]`,
			`testdata/invalid-unpinned.yaml:18:7: engine.unpinned[10].what: must be set`,
			`testdata/invalid-unpinned.yaml:25:3: engine.unpinned: must list at most 32 downloads, not 33`,
		},
	}}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		t.Run(strings.TrimSuffix(tt.file, ".yaml"), func(t *testing.T) {
			errs, warns := allProblems(loadFixture(t, tt.file))
			assert.Equal(t, tt.errs, errs)
			assert.Equal(t, tt.warns, warns)
		})
	}
	// every invalid fixture is pinned here
	files, err := filepath.Glob("testdata/invalid-*.yaml")
	require.NoError(t, err)
	for _, f := range files {
		assert.True(t, seen[filepath.Base(f)], "%s has no expectations in TestInvalidFixtures", f)
	}
}

func TestValidFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/valid-*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := load(false, []string{f})
			require.NoError(t, err)
			errs, _ := allProblems(c)
			assert.Empty(t, errs)
			assert.NotEmpty(t, c.Templates())
		})
	}
}

func TestLoadErrorIsProblems(t *testing.T) {
	c, err := load(false, []string{"testdata/invalid-type.yaml"})
	require.NotNil(t, c, "the catalog is returned with the load error")
	var ps Problems
	require.True(t, errors.As(err, &ps))
	assert.Len(t, ps, 5)
	assert.Equal(t, Position{File: "testdata/invalid-type.yaml", Line: 4, Column: 7}, ps[0].Pos)
	assert.Equal(t, "cpus", ps[0].Field)
}

func TestLoadMissingFile(t *testing.T) {
	_, err := load(false, []string{"testdata/does-not-exist.yaml"})
	require.EqualError(t, err, "testdata/does-not-exist.yaml: no such file or directory")
}

func TestLoadDocumentShapes(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ src, want string }{
		"scalar":  {"just a string\n", "x.yaml:1:1: a template must be a mapping, not a string"},
		"empty":   {"# nothing\n", "x.yaml: no YAML document in file"},
		"syntax":  {"name: [\n", "x.yaml:1:7: sequence end token ']' not found"},
		"null":    {"apiVersion: guestcatalog.dev/v1alpha1\nkind: Fragment\nname: a\ndescription:\n", "x.yaml:4:1: description: must not be null (give a value or remove the key)"},
		"merge":   {"apiVersion: guestcatalog.dev/v1alpha1\nkind: Fragment\nname: a\n<<: {cpus: 1}\n", "x.yaml:4:1: merge keys (<<) are not supported; compose with base: instead"},
		"float":   {"apiVersion: guestcatalog.dev/v1alpha1\nkind: Fragment\nname: a\ndistro: {name: ubuntu, family: debian, release: 24.10}\n", `x.yaml:4:49: distro.release: must be a string, not a number (quote it: "24.10")`},
		"tagged":  {"apiVersion: guestcatalog.dev/v1alpha1\nkind: Fragment\nname: a\ndistro: {name: debian, family: debian, release: !!str 13}\n", ""},
		"twice":   {"apiVersion: guestcatalog.dev/v1alpha1\nkind: Fragment\nname: a\n---\napiVersion: guestcatalog.dev/v1alpha1\nkind: Fragment\nname: a\n", `x.yaml:7:7: name: "a" is already defined at x.yaml:3:7`},
		"numeric": {"apiVersion: 1\nkind: Fragment\nname: a\n", `x.yaml:1:13: apiVersion: must be guestcatalog.dev/v1alpha1, not "1"`},
		"anchors": {"apiVersion: guestcatalog.dev/v1alpha1\nkind: Fragment\nname: a\nenv: &e {A: b}\nparams: *e\n", ""},
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, "x.yaml")
			require.NoError(t, writeFile(p, tc.src))
			c, err := load(false, []string{p})
			errs, _ := allProblems(c)
			if tc.want == "" {
				require.NoError(t, err)
				assert.Empty(t, errs)
				return
			}
			require.Error(t, err)
			assert.Equal(t, strings.ReplaceAll(tc.want, "x.yaml", p), err.Error())
		})
	}
}
