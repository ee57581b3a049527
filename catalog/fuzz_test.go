package catalog

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad: no input makes loading, composing, defaulting or validating
// panic. Seeds: every fixture and shipped template.
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	_ = fs.WalkDir(templatesFS, embeddedRoot, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if data, err := templatesFS.ReadFile(p); err == nil {
				f.Add(data)
			}
		}
		return nil
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := newCatalog(newLoader(context.Background(), DefaultLimits()).parseFile("fuzz.yaml", data, 1))
		for _, r := range c.CheckAll() {
			if r.Template != nil {
				_ = r.Template.StepsFor(ArchX8664)
				_ = r.Template.DeepCopy()
			}
		}
		_ = c.Templates()
	})
}
