// Command step-ca runs the smallstep certificate authority from Debian's packaged Go sources
// (golang-github-smallstep-certificates-dev), which ship the library but no cmd/step-ca main package.
//
// infra/native/up builds it once per machine in GOPATH mode:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o step-ca ./infra/native/step-ca
//
// and runs it as: step-ca --password-file <file> <ca.json>.
//
// Only what the native stack uses is linked in: the software CA service (softcas) and the file-based
// key manager (softkms), registered by importing them for their side effects.
package main

import (
	"fmt"
	"os"

	"github.com/smallstep/certificates/commands"
	"github.com/urfave/cli"
	"go.step.sm/cli-utils/step"

	_ "github.com/smallstep/certificates/cas/softcas"
	_ "github.com/smallstep/certificates/kms/softkms"
)

// version is the Debian source version this binary was built from; set with -ldflags "-X main.version=...".
var version = "0.19.0"

func main() {
	step.Set("Mosaic native step-ca", version, "debian")

	app := cli.NewApp()
	app.Name = "step-ca"
	app.HelpName = "step-ca"
	app.Usage = "run the smallstep certificate authority (native build for the Mosaic stack)"
	app.UsageText = "step-ca <ca.json> [--password-file=<file>]"
	app.Version = version
	app.Flags = commands.AppCommand.Flags
	app.Action = commands.AppCommand.Action

	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
