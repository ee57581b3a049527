package exec

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestValidEnvName(t *testing.T) {
	re := regexp.MustCompile(EnvNamePattern)
	for _, name := range []string{"A", "_", "a_1", "PARAM_x", "GUESTCATALOG_USER", "", "1A", "A-B", "A B", "é", "A\n", "a.b", "_9"} {
		assert.Equal(t, re.MatchString(name), ValidEnvName(name), "%q", name)
	}
}

func FuzzValidEnvName(f *testing.F) {
	re := regexp.MustCompile(EnvNamePattern)
	for _, s := range []string{"A", "1", "a_b", "a-b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if re.MatchString(s) != ValidEnvName(s) {
			t.Fatalf("%q: pattern and function disagree", s)
		}
	})
}
