package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/vpnlab/vpnlab/gwconfig"
	"github.com/vpnlab/vpnlab/internal/gateway"
)

// newGatewayCmd: vpnlab gateway cgw|vgw [gateway flags] runs a gateway
// in this process, exactly as the cgw and vgw binaries do; vpnlab run
// starts its gateways this way, so one binary is all a run needs.
func newGatewayCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "gateway cgw|vgw --config FILE [gateway flags]",
		Short:              "Run a cgw or vgw (same as the cgw and vgw binaries; used by vpnlab run)",
		DisableFlagParsing: true,
		Args:               cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 || (args[0] != "cgw" && args[0] != "vgw") {
				cmd.PrintErrln("usage: vpnlab gateway cgw|vgw --config FILE [--check] [--log-format ...] [--events FILE] ...")
				return exitError{2}
			}
			prof := gwconfig.CGW
			if args[0] == "vgw" {
				prof = gwconfig.VGW
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if code := gateway.Run(ctx, prof, args[0], args[1:], os.Stdout, os.Stderr); code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
}
