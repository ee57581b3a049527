package intervals

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "intervals.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

func TestDefaultsScalePerAccelerator(t *testing.T) {
	s, err := Load()
	require.NoError(t, err)

	kvm, err := s.Get("default/wait-ssh", AccelKVM)
	require.NoError(t, err)
	tcg, err := s.Get("default/wait-ssh", AccelTCG)
	require.NoError(t, err)
	assert.Equal(t, 60*time.Second, kvm)
	assert.Equal(t, 180*time.Second, tcg)

	native, err := s.Get("default/wait-ssh", "")
	require.NoError(t, err)
	assert.Equal(t, kvm, native)

	// Unscaled intervals stay the same on every accelerator.
	for _, name := range []string{"accel/kvm-stall", "default/poll"} {
		a, err := s.Get(name, AccelKVM)
		require.NoError(t, err)
		b, err := s.Get(name, AccelTCG)
		require.NoError(t, err)
		assert.Equal(t, a, b, name)
	}
	assert.Equal(t, 20*time.Second, s.MustGet("accel/kvm-stall", AccelTCG))
	assert.Equal(t, 3.0, s.Scale(AccelTCG))
}

func TestEveryDocumentedNameIsDefined(t *testing.T) {
	s, err := Load()
	require.NoError(t, err)
	for _, name := range []string{
		"default/wait-kernel", "default/wait-userspace", "default/wait-ssh",
		"default/wait-cloud-init", "default/probe", "default/shutdown",
		"default/qmp-connect", "default/loadvm", "default/kill-grace", "default/poll",
		"accel/kvm-stall", "engine", "cluster",
	} {
		for _, a := range []string{AccelKVM, AccelTCG, AccelHVF, ""} {
			d, err := s.Get(name, a)
			require.NoError(t, err, name)
			assert.Positive(t, d, name)
		}
	}
}

func TestUnknownNameAndAccelerator(t *testing.T) {
	s, err := Load()
	require.NoError(t, err)
	_, err = s.Get("default/wait-nothing", AccelTCG)
	require.ErrorIs(t, err, ErrUnknown)
	assert.Contains(t, err.Error(), `interval "default/wait-nothing": unknown interval (known: accel/kvm-stall, `)

	_, err = s.Get("default/wait-ssh", "whpx")
	require.EqualError(t, err, `interval "default/wait-ssh": unknown accelerator "whpx" (want one of kvm, tcg, hvf)`)
	assert.Panics(t, func() { s.MustGet("nope", AccelKVM) })
}

func TestShortNameFindsDefault(t *testing.T) {
	s, err := Load()
	require.NoError(t, err)
	d, err := s.Get("probe", AccelTCG)
	require.NoError(t, err)
	assert.Equal(t, 180*time.Second, d)
	// A name with a slash is never rewritten.
	_, err = s.Get("docker/probe", AccelTCG)
	assert.ErrorIs(t, err, ErrUnknown)
}

func TestResolveAcceptsDurationOrName(t *testing.T) {
	s, err := Load()
	require.NoError(t, err)
	d, err := s.Resolve("5m", AccelTCG)
	require.NoError(t, err)
	assert.Equal(t, 5*time.Minute, d, "a literal duration is never scaled")

	d, err = s.Resolve(" engine ", AccelTCG)
	require.NoError(t, err)
	assert.Equal(t, 6*time.Minute, d)

	_, err = s.Resolve("", AccelTCG)
	assert.EqualError(t, err, "empty interval")
	_, err = s.Resolve("-5s", AccelTCG)
	assert.EqualError(t, err, `interval "-5s": must be positive`)
	_, err = s.Resolve("5 minutes", AccelTCG)
	assert.ErrorIs(t, err, ErrUnknown)
}

func TestUserFileOverridesAndAdds(t *testing.T) {
	p := writeFile(t, `
scale:
  tcg: 5
intervals:
  default/wait-ssh: {base: 2m, tcg: 7m}
  docker/wait-engine: 30s
  default/poll: {base: 500ms, scaled: false}
`)
	s, err := Load(WithFile(p))
	require.NoError(t, err)
	assert.Equal(t, 7*time.Minute, s.MustGet("default/wait-ssh", AccelTCG), "explicit per-accelerator value")
	assert.Equal(t, 2*time.Minute, s.MustGet("default/wait-ssh", AccelKVM))
	assert.Equal(t, 150*time.Second, s.MustGet("docker/wait-engine", AccelTCG), "new name, scaled ×5")
	assert.Equal(t, 500*time.Millisecond, s.MustGet("default/poll", AccelTCG))
	assert.Equal(t, 10*time.Minute, s.MustGet("engine", AccelTCG), "untouched default, new scale")
	assert.Equal(t, p, s.Source("docker/wait-engine"))
	assert.Equal(t, "defaults.yaml", s.Source("engine"))
}

func TestUserFileErrorsNameTheField(t *testing.T) {
	p := writeFile(t, `
scale:
  tcg: 0
  whpx: 2
intervals:
  default/wait-ssh: soon
  x/y: {base: 1m, tcg: -1s}
  z: {tcg: 1m}
`)
	_, err := Load(WithFile(p))
	require.Error(t, err)
	want := p + `: intervals.default/wait-ssh: invalid duration "soon" (want e.g. 90s or 5m)` + "\n" +
		p + `: intervals.x/y.tcg: must be positive, got -1s` + "\n" +
		p + `: intervals.z.base: must be set (a duration such as 90s or 5m)` + "\n" +
		p + `: scale.tcg: must be positive, got 0` + "\n" +
		p + `: scale.whpx: unknown accelerator (want one of kvm, tcg, hvf)`
	assert.Equal(t, want, err.Error())
}

func TestUserFileIsStrict(t *testing.T) {
	p := writeFile(t, "intervals:\n  default/wait-ssh: {base: 1m, tgc: 2m}\n")
	_, err := Load(WithFile(p))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown field "tgc"`)

	p = writeFile(t, "interval:\n  default/wait-ssh: 1m\n")
	_, err = Load(WithFile(p))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown field "interval"`)

	_, err = Load(WithFile(filepath.Join(t.TempDir(), "missing.yaml")))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestEnvironmentOverrides(t *testing.T) {
	p := writeFile(t, "intervals:\n  engine: 1m\n")
	s, err := Load(WithFile(p), WithEnv(map[string]string{
		"GUESTCATALOG_INTERVAL_DEFAULT_WAIT_SSH": "7m",
		"GUESTCATALOG_INTERVAL_SCALE_TCG":        "2",
	}))
	require.NoError(t, err)
	assert.Equal(t, 7*time.Minute, s.MustGet("default/wait-ssh", AccelTCG), "env value is final")
	assert.Equal(t, 7*time.Minute, s.MustGet("default/wait-ssh", AccelKVM))
	assert.Equal(t, 2*time.Minute, s.MustGet("engine", AccelTCG), "file from env, scale from env")
	assert.Equal(t, "GUESTCATALOG_INTERVAL_DEFAULT_WAIT_SSH", s.Source("default/wait-ssh"))

	_, err = Load(WithEnv(map[string]string{
		"GUESTCATALOG_INTERVAL_DEFAULT_WAIT_SHS": "7m",
		"GUESTCATALOG_INTERVAL_ENGINE":           "fast",
		"GUESTCATALOG_INTERVAL_SCALE_TCG":        "-1",
	}))
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, "GUESTCATALOG_INTERVAL_DEFAULT_WAIT_SHS: no interval has this name")
	assert.Contains(t, msg, `GUESTCATALOG_INTERVAL_ENGINE: invalid duration "fast"`)
	assert.Contains(t, msg, `GUESTCATALOG_INTERVAL_SCALE_TCG: want a positive number, got "-1"`)
}

func TestEnvName(t *testing.T) {
	assert.Equal(t, "GUESTCATALOG_INTERVAL_DEFAULT_WAIT_SSH", EnvName("default/wait-ssh"))
	assert.Equal(t, "GUESTCATALOG_INTERVAL_ACCEL_KVM_STALL", EnvName("accel/kvm-stall"))
}

func TestWithFileEmptyIsIgnored(t *testing.T) {
	_, err := Load(WithFile(""))
	require.NoError(t, err)
}

func TestDefault(t *testing.T) {
	s, err := Default()
	require.NoError(t, err)
	assert.Positive(t, s.MustGet("default/wait-kernel", AccelKVM))
}

func TestForeignArchFactor(t *testing.T) {
	s, err := Load(WithFile(writeFile(t, "foreign: {aarch64: 2.5}\nintervals:\n  x/fixed: {base: 10s, tcg: 40s}\n")))
	require.NoError(t, err)
	native := s.ForGuest(ArchX8664, ArchX8664)
	assert.Same(t, s, native, "a native guest gets the set as it is")
	assert.Equal(t, 1.0, native.Factor())
	assert.Equal(t, "", native.ForeignArch())

	f := s.ForGuest(ArchAarch64, ArchX8664)
	assert.Equal(t, 2.5, f.Factor())
	assert.Equal(t, ArchAarch64, f.ForeignArch())
	assert.Equal(t, 2.5, s.ForeignScale(ArchAarch64, ArchX8664))
	assert.Equal(t, 1.0, s.ForeignScale(ArchAarch64, ArchAarch64))

	tcg := s.MustGet("default/wait-ssh", AccelTCG)
	assert.Equal(t, time.Duration(float64(tcg)*2.5), f.MustGet("default/wait-ssh", AccelTCG), "scaled on top of the accelerator")
	assert.Equal(t, 100*time.Second, f.MustGet("x/fixed", AccelTCG), "an explicit per-accelerator value carries the factor too")
	assert.Equal(t, s.MustGet("default/poll", AccelTCG), f.MustGet("default/poll", AccelTCG), "scaled: false stays")
	assert.Equal(t, tcg, s.MustGet("default/wait-ssh", AccelTCG), "the original set is unchanged")
	assert.Equal(t, f.MustGet("default/wait-ssh", AccelTCG), f.ForGuest(ArchAarch64, ArchX8664).MustGet("default/wait-ssh", AccelTCG), "idempotent")

	// An environment value is final.
	e, err := Load(WithEnv(map[string]string{EnvName("default/wait-ssh"): "7s"}))
	require.NoError(t, err)
	assert.Equal(t, 7*time.Second, e.ForGuest(ArchAarch64, ArchX8664).MustGet("default/wait-ssh", AccelTCG))
}

func TestDefaultsHaveMeasuredForeignFactor(t *testing.T) {
	s, err := Load()
	require.NoError(t, err)
	assert.Greater(t, s.ForeignScale(ArchAarch64, ArchX8664), 1.0)
}

func TestForeignFileErrors(t *testing.T) {
	_, err := Load(WithFile(writeFile(t, "foreign: {riscv64: 2, aarch64: 0.5}\n")))
	require.Error(t, err)
	assert.ErrorContains(t, err, "foreign.riscv64: unknown arch")
	assert.ErrorContains(t, err, "foreign.aarch64: must be at least 1")
}
