// Command vpnlab is the vpnlab test harness CLI.
//
//	vpnlab decode CAPTURE [--keys F]  explain the IKEv1/IPsec traffic of a capture (see docs/decode.md)
//	vpnlab vectors PATH...          run JSON known-answer test vectors (see docs/testvectors.md)
//	vpnlab status --control ADDR    show a running gateway's tunnels (see docs/control-api.md)
//	vpnlab run SCENARIO.yaml...     run scenario files end to end (see docs/scenarios.md)
//	vpnlab gateway cgw|vgw ...      run a gateway (as the cgw and vgw binaries; used by run)
//	vpnlab export --format F VGW.yaml  the customer gateway's configuration (see docs/export.md)
//	vpnlab clean [--dry-run]        remove what killed runs left behind: namespaces (with their
//	                                nft rules), processes in them, run state; only labs whose
//	                                marker (/run/vpnlab/labs/ID) names a dead owner
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// exitError carries an exit status without printing anything more (the
// command already reported to stderr/stdout).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "vpnlab",
		Short:         "IKEv1/IPsec site-to-site VPN test harness",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newDecodeCmd())
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newVectorsCmd(), newStatusCmd(), newRunCmd(), newGatewayCmd())
	root.AddCommand(newExportCmd())
	root.AddCommand(newCleanCmd())
	return root
}

func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	if e, ok := err.(exitError); ok {
		return e.code
	}
	fmt.Fprintf(stderr, "vpnlab: %v\nRun 'vpnlab --help' for usage.\n", err)
	return 2
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
