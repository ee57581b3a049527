package main

import (
	"os"

	"github.com/guestcatalog/guestcatalog/catalog"
)

// TODO(merge b-catalog): these become c.TemplatesIn(path) and c.Shadowed().

type shadow struct{ Name, Source, Builtin string }

func shadowed(*catalog.Catalog) []shadow { return nil }

func templatesIn(c *catalog.Catalog, path string) []string {
	var out []string
	for _, t := range c.Templates() {
		if t.Source == path || sameFile(t.Source, path) {
			out = append(out, t.Name)
		}
	}
	return out
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}
