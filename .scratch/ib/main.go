package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/imagebuild"
)

func main() {
	suite := os.Args[1]
	pkgs := strings.Split(os.Args[2], ",")
	var extra []string
	if len(os.Args) > 3 {
		extra = strings.Split(os.Args[3], ",")
	}
	a, err := imagebuild.Build(context.Background(), catalog.BuildRecipe{Suite: suite, Packages: pkgs, Bake: true}, extra,
		imagebuild.WithCacheDir("/var/tmp/gc-cache"), imagebuild.WithOutput(os.Stdout), imagebuild.WithForce(os.Getenv("FORCE") == "1"))
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	fmt.Printf("%+v\n", *a)
}
