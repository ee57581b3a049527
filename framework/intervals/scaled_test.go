package intervals

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResolveScaled(t *testing.T) {
	s, err := Load()
	require.NoError(t, err)
	for _, tc := range []struct {
		value, accel string
		want         time.Duration
	}{
		{"90s", AccelKVM, 90 * time.Second},
		{"90s", AccelTCG, 270 * time.Second}, // a duration is scaled, unlike Resolve's
		{"90s", "", 90 * time.Second},
		{"engine", AccelTCG, 6 * time.Minute},
		{"default/poll", AccelTCG, time.Second}, // an unscaled interval stays so
	} {
		d, err := s.ResolveScaled(tc.value, tc.accel)
		require.NoError(t, err, tc.value)
		assert.Equal(t, tc.want, d, "%s on %s", tc.value, tc.accel)
	}
	_, err = s.ResolveScaled("-1s", AccelTCG)
	require.EqualError(t, err, `interval "-1s": must be positive`)
	_, err = s.ResolveScaled("no/such", AccelTCG)
	require.ErrorIs(t, err, ErrUnknown)
}
