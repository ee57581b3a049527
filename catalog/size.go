package catalog

import (
	"fmt"
	"math/big"
	"strings"
)

var sizeUnits = map[string]int64{
	"": 1, "B": 1,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
	"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40,
}

// ParseSize parses a size such as "512MiB", "2GiB", "10G" or "1.5GiB" into
// bytes. Units are binary, as QEMU reads them: K, M, G, T are KiB, MiB,
// GiB, TiB; a number alone is bytes. A fraction is rounded down to a byte.
func ParseSize(s string) (int64, error) {
	if strings.TrimSpace(s) == "" {
		return 0, fmt.Errorf("invalid size: empty (want a number and a unit, e.g. 2GiB)")
	}
	if !sizePattern.MatchString(strings.TrimSpace(s)) {
		return 0, fmt.Errorf("invalid size %q: want a number and a unit (B, KiB, MiB, GiB, TiB, K, M, G, T), e.g. 2GiB", s)
	}
	num := strings.TrimSpace(s)
	unit := strings.TrimLeft(num, "0123456789.")
	num = strings.TrimSpace(strings.TrimSuffix(num, unit))
	unit = strings.TrimSpace(unit)
	mult, ok := sizeUnits[unit]
	if !ok { // cannot happen: the pattern lists the units
		return 0, fmt.Errorf("invalid size %q: unknown unit %q", s, unit)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("invalid size %q: bad number %q", s, num)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if !n.IsInt64() {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return n.Int64(), nil
}

// MemoryBytes is the guest memory in bytes (the default when unset, 0 if
// Memory does not parse; Validate reports that).
func (t *Template) MemoryBytes() int64 { return sizeOr(t.Memory, DefaultMemory) }

// DiskBytes is the guest disk size in bytes, like MemoryBytes.
func (t *Template) DiskBytes() int64 { return sizeOr(t.Disk, DefaultDisk) }

func sizeOr(s, def string) int64 {
	if s == "" {
		s = def
	}
	n, err := ParseSize(s)
	if err != nil {
		return 0
	}
	return n
}
