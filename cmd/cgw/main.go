// Command cgw is the customer gateway: an IKEv1 initiator and responder with
// strongSwan-like defaults. See docs/config.md.
package main

import (
	"github.com/vpnlab/vpnlab/gwconfig"
	"github.com/vpnlab/vpnlab/internal/gateway"
)

func main() { gateway.Main(gwconfig.CGW, "cgw") }
