package catalog

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestChecksComposeAndDefault(t *testing.T) {
	tmpl := resolveFixture(t, "valid-checks.yaml", "my-hello")
	var names []string
	for _, ck := range tmpl.Checks {
		names = append(names, ck.Name)
	}
	assert.Equal(t, []string{"hello prints its greeting", "hello fails on a bad flag", "arch"}, names,
		"bases' checks first; the rhel-only check is dropped for debian")
	first := tmpl.Checks[0]
	assert.Equal(t, CheckAsUser, first.As)
	require.NotNil(t, first.ExitCode)
	assert.Equal(t, 0, first.ExpectedExitCode())
	assert.Equal(t, 64, tmpl.Checks[1].ExpectedExitCode())
	assert.Equal(t, "engine", tmpl.Checks[1].Eventually)
	assert.Len(t, tmpl.ChecksFor(ArchX8664), 2)
	assert.Len(t, tmpl.ChecksFor(ArchAarch64), 3)
	assert.Equal(t, "30s", tmpl.Probes[0].Eventually)

	cp := tmpl.DeepCopy()
	*cp.Checks[1].ExitCode = 1
	*cp.Checks[1].Stdout.Equals = "x"
	assert.Equal(t, 64, *tmpl.Checks[1].ExitCode, "DeepCopy shares nothing")
	assert.Empty(t, *tmpl.Checks[1].Stdout.Equals)
}

func TestExpectMatch(t *testing.T) {
	s := func(v string) *string { return &v }
	for _, tc := range []struct {
		e    *Expect
		out  string
		want string
	}{
		{nil, "anything", ""},
		{&Expect{Equals: s("Hello")}, "Hello\n", ""},
		{&Expect{Equals: s("Hello\n")}, "Hello", ""},
		{&Expect{Equals: s("")}, "\n", ""},
		{&Expect{Equals: s("Hello")}, "Hello world\n", `expected output that equals "Hello"`},
		{&Expect{Contains: "llo"}, "Hello\n", ""},
		{&Expect{Contains: "bye"}, "Hello\n", `expected output that contains "bye"`},
		{&Expect{Regex: `(?m)^v\d+$`}, "x\nv26\n", ""},
		{&Expect{Regex: `^v\d+$`}, "x\nv26\n", `expected output that matches /^v\d+$/`},
	} {
		err := tc.e.Match(tc.out)
		if tc.want == "" {
			assert.NoError(t, err, "%s on %q", tc.e, tc.out)
		} else {
			assert.EqualError(t, err, tc.want)
		}
	}
}

// TestProbeEventually: probes' eventually follows the rule of timeout.
func TestProbeEventually(t *testing.T) {
	c := catalogFromYAML(t, `apiVersion: guestcatalog.dev/v1alpha1
kind: Fragment
name: engines/x
engine: {name: x}
probes:
  - description: a
    script: "true"
    eventually: 2 min
  - description: b
    script: "true"
    timeout: -5s
    eventually: k8s/wait-apiserver
`)
	r, err := c.Check("engines/x")
	require.NoError(t, err)
	src := r.Source
	assert.Equal(t, []string{
		src + `:8:17: probes[0].eventually: must be a duration (90s) or a named interval (probe, docker/wait-engine), not "2 min"`,
		src + `:11:14: probes[1].timeout: must be positive, not -5s`,
	}, r.Errors.Strings())
}
