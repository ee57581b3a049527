package cloudinit

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// trickyStrings are scalars that general YAML encoders were seen to get
// wrong, or that YAML 1.1 reads as something else when written plain.
var trickyStrings = []string{
	"", " ", "\n", "\n\n", "a\n", "a\n\n", "a\n\n\n", "a", "a\nb", "a\nb\n",
	"  leading\nx\n", "\n  after blank\n", "trailing \nx", "\ttab\n", "a\r\nb\n", "\x01ctrl\n", "x\x7f",
	"#!/bin/sh\n# comment: yes\necho \"hi\" : - [x] {y} &z *w !v |u >t %s @r `q`\n",
	"---\n...\n", "key: value", "- item", "? q", "# c", "a #b", "a:", "a: b", ":a",
	"null", "Null", "~", "yes", "No", "on", "OFF", "y", "true", "False",
	"0755", "1e3", "0x1f", "1_000", "12:30:00", "52:54:00:12:34:56", "2001-12-14", ".inf", "-1", "+1",
	"'quoted'", `"dq"`, `back\slash`, "tab\there", "nel\u0085x", "ls\u2028x\n", "ps\u2029x\n", "bom\ufeffx", "café\n", "🚀\n",
	"ALL=(ALL) NOPASSWD:ALL", "ssh-ed25519 AAAA+/= user@host", "/bin/sh", "$UPTIME", "&anchor", "*alias", "!tag", "%directive", "@at", "`tick`",
	"line\n  indented\n", "\n\nleading blank\n", "very long " + strings.Repeat("x", 300) + "\n",
}

func TestEncodeYAMLRoundTrip(t *testing.T) {
	var items seq
	for _, s := range trickyStrings {
		items = append(items, s, mapping{{"content", s}, {"n", 3}, {"flag", false}}, seq{s})
	}
	doc := mapping{{"items", items}, {"empty_seq", seq{}}, {"empty_map", mapping{}}, {"nested", mapping{{"deep", mapping{{"k", "v"}}}}}}
	out, err := encodeYAML([]string{"#cloud-config"}, doc)
	require.NoError(t, err)
	require.NoError(t, checkRoundTrip(out, doc), "%s", out)
}

func TestScalarStyles(t *testing.T) {
	for in, want := range map[string]string{
		"/bin/sh":                "/bin/sh",
		"ALL=(ALL) NOPASSWD:ALL": "ALL=(ALL) NOPASSWD:ALL",
		"yes":                    `"yes"`,
		"0644":                   `"0644"`,
		"52:54:00:12:34:56":      `"52:54:00:12:34:56"`,
		"key: value":             `"key: value"`,
		"a #b":                   `"a #b"`,
		"-c":                     `"-c"`,
		"":                       `""`,
		"a\r\nb":                 `"a\r\nb"`,
		"\x01":                   `"\x01"`,
		"x\u2028y":               `"x\u2028y"`,
		`q"b\`:                   `"q\"b\\"`,
	} {
		got, err := scalar(in)
		require.NoError(t, err)
		assert.Equal(t, want, got, "scalar(%q)", in)
	}
	_, err := scalar("\xff")
	assert.Error(t, err)

	// Scripts are literal blocks, readable in user-data.
	var b strings.Builder
	require.NoError(t, writeString(&b, "#!/bin/sh\necho 'hi'\n", 0))
	assert.Equal(t, " |\n  #!/bin/sh\n  echo 'hi'\n", b.String())
	b.Reset()
	require.NoError(t, writeString(&b, "no newline\nend", 2))
	assert.Equal(t, " |-\n    no newline\n    end\n", b.String())
	b.Reset()
	require.NoError(t, writeString(&b, "keep\n\n", 0))
	assert.Equal(t, " |+\n  keep\n\n", b.String())
}

func FuzzEncodeYAML(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		doc := mapping{{"a", s}, {"b", seq{s, mapping{{"c", s}}}}}
		out, err := encodeYAML(nil, doc)
		if err != nil {
			if !strings.Contains(err.Error(), "not valid UTF-8") {
				t.Fatal(err)
			}
			return
		}
		if err := checkRoundTrip(out, doc); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
	})
}
