package main

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/config"
)

// templateArgCommands take template names as arguments: their examples'
// names must exist.
var templateArgCommands = []string{"show", "validate", "render", "pull", "build-image", "verify", "matrix"}

// exampleLines returns the command lines of an Example: each line that
// starts with "catalog ", cut at a pipe, split into words (single and
// double quotes group words).
func exampleLines(example string) [][]string {
	var out [][]string
	for _, l := range strings.Split(example, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "catalog ") && l != "catalog" {
			continue
		}
		var words []string
		var cur strings.Builder
		var quote rune
		in := false
	loop:
		for _, r := range l {
			switch {
			case quote != 0:
				if r == quote {
					quote = 0
				} else {
					cur.WriteRune(r)
				}
			case r == '\'' || r == '"':
				quote, in = r, true
			case r == '|' || r == '>' || r == ';' || r == '#' && !in:
				break loop
			case r == ' ' || r == '\t':
				if in {
					words = append(words, cur.String())
					cur.Reset()
					in = false
				}
			default:
				cur.WriteRune(r)
				in = true
			}
		}
		if in {
			words = append(words, cur.String())
		}
		out = append(out, words[1:])
	}
	return out
}

func allCommands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, s := range c.Commands() {
		if s.Hidden || s.Name() == "help" || s.Name() == "completion" {
			continue
		}
		out = append(out, allCommands(s)...)
	}
	return out
}

// Every runnable command has an Example, and every example parses with the
// real flag set and names templates that exist: a stale example (a renamed
// flag, `pull fedora-42-podman`) fails here.
func TestEveryExampleParses(t *testing.T) {
	cfg, err := config.Parse(testEnv())
	require.NoError(t, err)
	cat, err := catalog.Load(context.Background())
	require.NoError(t, err)
	root := newRootCmd(&app{env: testEnv(), envCfg: cfg})
	checked := 0
	for _, c := range allCommands(root) {
		if !c.Runnable() || c.HasAvailableSubCommands() {
			continue
		}
		t.Run(c.CommandPath(), func(t *testing.T) {
			require.NotEmpty(t, strings.TrimSpace(c.Example), "%s --help has no example", c.CommandPath())
			for _, args := range exampleLines(c.Example) {
				// A fresh tree per line: parsed flags stay set.
				r := newRootCmd(&app{env: testEnv(), envCfg: cfg})
				cmd, rest, err := r.Find(args)
				require.NoError(t, err, "%v", args)
				require.Equal(t, c.CommandPath(), cmd.CommandPath(), "example %q runs another command", strings.Join(args, " "))
				require.NoError(t, cmd.ParseFlags(rest), "example %q", strings.Join(args, " "))
				pos := cmd.Flags().Args()
				if cmd.Args != nil {
					require.NoError(t, cmd.Args(cmd, pos), "example %q", strings.Join(args, " "))
				}
				if slices.Contains(templateArgCommands, cmd.Name()) {
					for _, a := range pos {
						if isPath(a) || strings.Contains(a, "/") {
							continue // a file, or a fragment (engines/docker)
						}
						_, err := cat.Resolve(a)
						assert.NoError(t, err, "example %q names a template that does not exist", strings.Join(args, " "))
					}
				}
				checked++
			}
		})
	}
	assert.Greater(t, checked, 20)
}

func TestExampleLines(t *testing.T) {
	assert.Equal(t, [][]string{{"list", "-o", "json"}, {"show", "a b", "--set", "x=1"}},
		exampleLines("  catalog list -o json | jq -r '.[] | .name'\n  catalog show 'a b' --set x=1\n  # comment\n  go run ./cmd/catalog"))
}
