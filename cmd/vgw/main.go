// Command vgw is the AWS-modelled virtual private gateway: an IKEv1 responder
// (and, with startup_action start, initiator) with AWS's tunnel-option
// defaults and limits. See docs/config.md.
package main

import (
	"github.com/vpnlab/vpnlab/gwconfig"
	"github.com/vpnlab/vpnlab/internal/gateway"
)

func main() { gateway.Main(gwconfig.VGW, "vgw") }
