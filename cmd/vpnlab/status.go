package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/vpnlab/vpnlab/control"
	"github.com/vpnlab/vpnlab/ike/status"
)

// newStatusCmd: vpnlab status --control ADDR [--wait-established D] [--json]
func newStatusCmd() *cobra.Command {
	var addr string
	var wait time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status --control ADDR",
		Short: "Show a running gateway's tunnels (optionally wait until all are established)",
		Long: `Reads a running cgw or vgw through its control API (docs/control-api.md) and prints
each tunnel in the manner of swanctl --list-sas: its AWS state (UP/DOWN, phase 1
and phase 2 states, BGP), the ISAKMP SA (IKE version, exchange, role, proposal,
cookies, lifetime left), each IPsec SA pair (SPIs, proposal, traffic selectors,
bytes and packets each way, rekey and expiry), drops and IKE counters.
--json prints the control API's status object instead (status.Snapshot).
With --wait-established it polls until every tunnel has phase 1 and phase 2
Established, and exits 1 if that does not happen in time.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if addr == "" {
				return fmt.Errorf("--control is required (e.g. unix:/run/vpnlab/cgw.sock)")
			}
			c := control.Dial(addr)
			ctx := cmd.Context()
			start := time.Now()
			var st status.Snapshot
			for {
				rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				var err error
				st, err = c.Status(rctx)
				cancel()
				if err == nil && (wait == 0 || allEstablished(st)) {
					break
				}
				if wait == 0 || time.Since(start) > wait {
					if err != nil {
						return fmt.Errorf("control API at %s: %w", addr, err)
					}
					printStatus(cmd.OutOrStdout(), st, asJSON)
					fmt.Fprintf(cmd.ErrOrStderr(), "vpnlab: not all tunnels established after %v\n", wait)
					return exitError{1}
				}
				time.Sleep(20 * time.Millisecond)
			}
			printStatus(cmd.OutOrStdout(), st, asJSON)
			if wait > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "all tunnels established (waited %v)\n", time.Since(start).Round(time.Millisecond))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "control", "", "control API address: unix:/path or 127.0.0.1:PORT")
	cmd.Flags().DurationVar(&wait, "wait-established", 0, "wait up to this long until every tunnel is established")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the raw status JSON")
	return cmd
}

func allEstablished(st status.Snapshot) bool {
	if len(st.Tunnels) == 0 {
		return false
	}
	for _, t := range st.Tunnels {
		if t.Phase1State != "Established" || t.Phase2State != "Established" {
			return false
		}
	}
	return true
}

func printStatus(w io.Writer, st status.Snapshot, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
		return
	}
	writeSAs(w, st, time.Now())
}
