package gateway

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/capture"
	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/datapath"
	"github.com/vpnlab/vpnlab/gwconfig"
)

// startDataPath creates the TUN device, the raw sockets and the data path,
// installs the configured routes and starts reading the device. stop closes
// everything (the kernel removes the device and its routes).
func startDataPath(c *gwconfig.Config, sink *capture.Writer, log logrus.FieldLogger) (*datapath.DataPath, func(), error) {
	cfg := c.DataPath
	addrs := append([]netip.Prefix(nil), cfg.Addresses...)
	for _, t := range c.Tunnels {
		if t.LocalInside.IsValid() && !slices.Contains(addrs, t.LocalInside) {
			addrs = append(addrs, t.LocalInside) // BGP runs over the inside addresses
		}
	}
	dev, err := datapath.OpenTUN(datapath.TUNConfig{Name: cfg.TUN, MTU: cfg.MTU, Addresses: addrs})
	if err != nil {
		return nil, nil, err
	}
	dlog := log.WithField("component", "datapath")
	wire := datapath.NewNetWire(dlog, datapath.OutsideMark)
	if !wire.RawIP() {
		dlog.WithField("why", wire.RawIPError()).Warn("raw ESP/AH (IP protocols 50/51) unavailable: only ESP in UDP will work")
	}
	// With BGP or static routes the route decision says where each prefix
	// goes; the traffic selectors (AWS: 0.0.0.0/0 on both tunnels) do not.
	dc := datapath.Config{Device: dev, Wire: wire, Log: dlog, ExplicitRoutesOnly: routingWanted(c)}
	if sink != nil {
		dc.Sink = sink
	}
	dp, err := datapath.New(dc)
	if err != nil {
		dev.Close()
		wire.Close()
		return nil, nil, err
	}
	for _, t := range c.Tunnels {
		if err := dp.SetTunnelOptions(t.Name, datapath.TunnelOptions{MSSClamp: t.MSSClamp, OutsideMTU: t.OutsideMTU}); err != nil {
			dp.Close()
			wire.Close()
			return nil, nil, err
		}
	}
	var undo []func()
	stop := func() {
		for _, u := range undo {
			u()
		}
		dp.Close()
		wire.Close()
	}
	dlog.WithFields(logrus.Fields{"tun": cfg.TUN, "mtu": cfg.MTU, "addresses": fmt.Sprint(addrs), "raw_ip": wire.RawIP()}).Info("data path ready")
	for _, t := range c.IKE.Tunnels {
		if t.Phase2.Mode != childsa.ModeTransport {
			continue
		}
		u, err := datapath.AddTransportRoute(cfg.TUN, t.LocalAddr, t.RemoteAddr)
		if err != nil {
			stop()
			return nil, nil, err
		}
		undo = append(undo, u)
		dlog.WithFields(logrus.Fields{"tunnel": t.Name, "peer": t.RemoteAddr.String(), "table": datapath.TransportTable}).
			Info("transport mode: traffic to the peer's address goes through the TUN device (policy rule: packets without our socket mark)")
	}
	if cfg.Routes {
		for _, sr := range selectorRoutes(c) {
			f := dlog.WithFields(logrus.Fields{"tunnel": sr.tunnel, "prefix": sr.prefix.String()})
			if sr.skip != "" {
				if sr.warn {
					f.Warn(sr.skip)
				} else {
					f.Debug(sr.skip)
				}
				continue
			}
			if err := datapath.AddRoute(cfg.TUN, sr.prefix); err != nil {
				stop()
				return nil, nil, err
			}
			f.WithField("dev", cfg.TUN).Info("route installed")
		}
	}
	go func() {
		if err := dp.RunInside(); err != nil {
			dlog.WithError(err).Error("data path stopped reading the TUN device")
		}
	}()
	return dp, stop, nil
}

// selectorRoute is what data_path.routes does with one tunnel's remote
// traffic selector: route it into the TUN device, or skip it (skip says
// why; warn when the operator should act).
type selectorRoute struct {
	tunnel string
	prefix netip.Prefix
	skip   string
	warn   bool
}

// selectorRoutes decides the kernel routes for the tunnels' remote
// traffic selectors. With BGP or static routes the route decision routes
// the decided prefixes into the TUN (routing.go) and the data path uses
// only those, so the selectors (AWS: 0.0.0.0/0) are not routed and that is
// no cause for a warning. Without it a selector that contains the peer's
// outside address cannot be routed (it would carry IKE and ESP into the
// tunnel): a warning.
func selectorRoutes(c *gwconfig.Config) []selectorRoute {
	decided := routingWanted(c)
	var out []selectorRoute
	for _, t := range c.IKE.Tunnels {
		if t.Phase2.Mode == childsa.ModeTransport {
			continue
		}
		sr := selectorRoute{tunnel: t.Name, prefix: t.Phase2.RemoteTS}
		switch {
		case decided:
			sr.skip = "remote traffic selector not routed into the TUN: the route decision (BGP or static routes) routes the decided prefixes"
		case sr.prefix.Contains(t.RemoteAddr):
			sr.skip, sr.warn = "not routing the remote traffic selector into the TUN: it contains the peer's outside address "+t.RemoteAddr.String()+" (add narrower routes, or use BGP)", true
		}
		out = append(out, sr)
	}
	return out
}
