//go:build ignore

// gen_schema writes the JSON Schema of template documents from the Go
// types (run by `go generate ./catalog`).
package main

import (
	"log"
	"os"

	"github.com/guestcatalog/guestcatalog/catalog"
)

func main() {
	b, err := catalog.GenerateSchema(".")
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(catalog.SchemaFile, b, 0o644); err != nil {
		log.Fatal(err)
	}
}
