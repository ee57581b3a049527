// Command genschema writes the JSON Schema of template documents from the
// Go types; `go generate ./catalog` runs it in the catalog directory.
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
