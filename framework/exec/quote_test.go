package exec

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestQuote(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", "''"},
		{"plain", "plain"},
		{"/usr/bin/x-y_z.1", "/usr/bin/x-y_z.1"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"'", `''\'''`},
		{"line1\nline2", "'line1\nline2'"},
		{"$HOME", "'$HOME'"},
		{"`id`", "'`id`'"},
		{"a;b", "'a;b'"},
		{"*", "'*'"},
		{"~", "'~'"},
		{"K=v", "K=v"},
		{`back\slash`, `'back\slash'`},
		{"tab\there", "'tab\there'"},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, Quote(c.in), "Quote(%q)", c.in)
	}
}

func TestJoinQuotesAssignmentLikeFirstWord(t *testing.T) {
	assert.Equal(t, "'A=b' c=d", Join([]string{"A=b", "c=d"}))
	assert.Equal(t, "echo '' 'a b'", Join([]string{"echo", "", "a b"}))
}

// TestQuoteRoundTrip gives the quoted words to a real sh and checks that it
// reads back exactly the original bytes.
func TestQuoteRoundTrip(t *testing.T) {
	words := []string{"", "'", "''", `"`, "a'b\"c", "line1\nline2\n", "$(id) `id` $HOME", "\\", "*?[]{}", " lead", "trail ", "ünïcødé", "-n", "!bang", "#hash"}
	h := &Host{}
	for _, w := range words {
		res, err := h.Run(context.Background(), Cmd{Script: "printf %s " + Quote(w)})
		require.NoError(t, err, "word %q", w)
		assert.Equal(t, w, string(res.Stdout), "word %q", w)
	}
	// The whole argv through Join and sh -c: each word is one argument.
	res, err := h.Run(context.Background(), Cmd{Script: "for a in " + Join(words) + "; do printf '<%s>' \"$a\"; done"})
	require.NoError(t, err)
	var want strings.Builder
	for _, w := range words {
		want.WriteString("<" + w + ">")
	}
	assert.Equal(t, want.String(), string(res.Stdout))
}

func TestShellLine(t *testing.T) {
	line, err := Cmd{Args: []string{"echo", "a b"}}.ShellLine()
	require.NoError(t, err)
	assert.Equal(t, "echo 'a b'", line)

	line, err = Cmd{Script: "echo $X", Sudo: true, Env: map[string]string{"X": "it's", "A": "1"}}.ShellLine()
	require.NoError(t, err)
	assert.Equal(t, `sudo -n -- env A=1 'X=it'\''s' sh -c 'echo $X'`, line)

	_, err = Cmd{}.ShellLine()
	assert.ErrorContains(t, err, "neither Args nor Script")
	_, err = Cmd{Args: []string{"a"}, Script: "b"}.ShellLine()
	assert.ErrorContains(t, err, "both Args and Script")
	_, err = Cmd{Args: []string{"a"}, Env: map[string]string{"BAD-NAME": "x"}}.ShellLine()
	assert.ErrorContains(t, err, `invalid environment variable name "BAD-NAME"`)
	_, err = Cmd{Args: []string{"X=1"}, Env: map[string]string{"A": "x"}}.ShellLine()
	assert.ErrorContains(t, err, "contains '='")
}

// TestShellLineRunsInSh runs ShellLine output through a real shell, the way
// sshd does, and checks argv and environment arrive unchanged.
func TestShellLineRunsInSh(t *testing.T) {
	cmd := Cmd{
		Args: []string{"sh", "-c", `printf '%s|%s|%s' "$1" "$V1" "$V2"`, "arg0", "x 'y'\nz"},
		Env:  map[string]string{"V1": "$(echo pwned)", "V2": "multi\nline 'q' \"dq\""},
	}
	line, err := cmd.ShellLine()
	require.NoError(t, err)
	res, err := (&Host{}).Run(context.Background(), Cmd{Args: []string{"sh", "-c", line}})
	require.NoError(t, err)
	assert.Equal(t, "x 'y'\nz|$(echo pwned)|multi\nline 'q' \"dq\"", string(res.Stdout))
}
