package catalog

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"512MiB":   512 << 20,
		"2GiB":     2 << 30,
		"10G":      10 << 30,
		"1.5GiB":   3 << 29,
		"1024":     1024,
		"100B":     100,
		"4 KiB":    4096,
		"1T":       1 << 40,
		" 256M ":   256 << 20,
		"0.5K":     512,
		"8388607T": 8388607 << 40,
	} {
		got, err := ParseSize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for in, want := range map[string]string{
		"":          `invalid size: empty (want a number and a unit, e.g. 2GiB)`,
		"abc":       `invalid size "abc": want a number and a unit (B, KiB, MiB, GiB, TiB, K, M, G, T), e.g. 2GiB`,
		"2GB":       `invalid size "2GB": want a number and a unit (B, KiB, MiB, GiB, TiB, K, M, G, T), e.g. 2GiB`,
		"2gib":      `invalid size "2gib": want a number and a unit (B, KiB, MiB, GiB, TiB, K, M, G, T), e.g. 2GiB`,
		"-1G":       `invalid size "-1G": want a number and a unit (B, KiB, MiB, GiB, TiB, K, M, G, T), e.g. 2GiB`,
		"1e3M":      `invalid size "1e3M": want a number and a unit (B, KiB, MiB, GiB, TiB, K, M, G, T), e.g. 2GiB`,
		"GiB":       `invalid size "GiB": want a number and a unit (B, KiB, MiB, GiB, TiB, K, M, G, T), e.g. 2GiB`,
		"8388608T":  `invalid size "8388608T": too large`,
		"2GiB junk": `invalid size "2GiB junk": want a number and a unit (B, KiB, MiB, GiB, TiB, K, M, G, T), e.g. 2GiB`,
	} {
		_, err := ParseSize(in)
		assert.EqualError(t, err, want, in)
	}
}

func TestSizeOfInvalidIsZero(t *testing.T) {
	assert.Equal(t, int64(0), (&Template{Memory: "junk"}).MemoryBytes())
	assert.Equal(t, int64(10<<30), (&Template{}).DiskBytes())
}
