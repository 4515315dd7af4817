// Command inspect looks inside a running mosaik network or a data directory.
// Its commands live in package cli.
package main

import (
	"os"

	"github.com/mosaik-go/mosaik/cmd/inspect/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
