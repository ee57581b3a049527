package cloudinit

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
)

// shippedCase is one shipped template on one of its arches, rendered for
// its first image there.
type shippedCase struct {
	name string // golden file prefix: templates/<template>.<arch>
	tpl  *catalog.Template
	in   Input
}

// shippedCases lists every shipped template on every arch it has an image
// for, with its first image there, and with its local build image when it
// has one further down. The catalog must load: a broken catalog fails here.
func shippedCases(t *testing.T) []shippedCase {
	t.Helper()
	c, err := catalog.Load(context.Background())
	require.NoError(t, err)
	var out []shippedCase
	for _, tpl := range c.Templates() {
		for _, arch := range tpl.Arches() {
			images := tpl.ImagesFor(arch)
			in := testInput(t, arch)
			in.Image = images[0]
			out = append(out, shippedCase{"templates/" + tpl.Name + "." + arch, tpl, in})
			// The offline path too: the locally built image (packages baked).
			for _, im := range images[1:] {
				if im.Build != nil && images[0].Build == nil {
					in.Image = im
					out = append(out, shippedCase{"templates/" + tpl.Name + "." + arch + ".build", tpl, in})
					break
				}
			}
		}
	}
	require.NotEmpty(t, out, "the catalog ships no templates")
	return out
}

// TestGoldenShippedTemplates keeps one golden user-data per shipped
// template and arch (and per local build image). An aarch64 seed that only
// differs from the x86_64 one in its header line has no file of its own.
func TestGoldenShippedTemplates(t *testing.T) {
	rendered := map[string][]byte{}
	for _, c := range shippedCases(t) {
		t.Run(c.name, func(t *testing.T) {
			s, err := Render(c.tpl, c.in)
			require.NoError(t, err)
			rendered[c.name] = s.UserData
			if c.in.Arch == catalog.ArchAarch64 {
				x86 := strings.Replace(c.name, "."+catalog.ArchAarch64, "."+catalog.ArchX8664, 1)
				same := strings.Replace(string(s.UserData), ", arch aarch64.", ", arch x86_64.", 1)
				if other, ok := rendered[x86]; ok && same == string(other) {
					return
				}
			}
			checkGolden(t, c.name+".user-data.yaml", s.UserData)
		})
	}
}

// TestShippedTemplatesRender checks what every shipped template's seed
// must hold, whatever the template.
func TestShippedTemplatesRender(t *testing.T) {
	for _, c := range shippedCases(t) {
		t.Run(c.name, func(t *testing.T) {
			s, err := Render(c.tpl, c.in)
			require.NoError(t, err)
			ud := decodeUserData(t, s.UserData)
			files := writeFiles(t, ud)
			require.Contains(t, files, RunnerPath)
			require.Contains(t, files, EnvPath)
			runcmd, _ := ud["runcmd"].([]any)
			require.NotEmpty(t, runcmd)
			assert.Equal(t, []any{"/bin/sh", RunnerPath}, runcmd[len(runcmd)-1], "the runner runs last")
			if c.in.Image.Build != nil && c.in.Image.Build.Bake {
				assert.NotContains(t, ud, "packages", "a baked image installs nothing")
				assert.NotContains(t, ud, "package_update")
			}
			for _, s := range c.tpl.StepsFor(c.in.Arch) {
				if s.Mode == catalog.ModeUser || s.Mode == catalog.ModeSystem {
					assert.True(t, strings.Contains(files[RunnerPath]["content"].(string), "run_step "), "runner runs the steps")
				}
			}
		})
	}
}
