package gwconfig

import (
	"net/netip"
	"regexp"
)

// DataPath is the optional data_path section: the TUN device through which
// the gateway carries the traffic of its IPsec SAs. Without it the gateway
// negotiates SAs but carries no traffic (IKE only).
type DataPath struct {
	TUN       string         // device name
	MTU       int            // device MTU
	Addresses []netip.Prefix // inside addresses on the device (e.g. BGP /30s)
	// Routes: route every tunnel's remote_ts into the device at start (a
	// prefix that contains the tunnel's remote outside address is skipped
	// with a warning: it would swallow the tunnel itself).
	Routes bool
}

// Data path defaults and limits.
const (
	DefaultMTU = 1400 // as strongSwan's kernel-libipsec TUN
	MinMTU     = 576
	MaxMTU     = 9000
)

var ifNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`)

func (d *decoder) dataPath(c *Config, top *object) {
	n := top.get("data_path")
	if n == nil {
		return
	}
	o := d.object(n, "data_path", "tun", "mtu", "addresses", "routes")
	dp := &DataPath{}
	if tn, ok := o.scalar("tun"); !ok {
		d.errf(o.line("tun"), o.p("tun"), "required: the name of the TUN device to create (e.g. vpnlab0)")
	} else if !ifNameRE.MatchString(tn.Value) {
		d.errf(tn, o.p("tun"), "%q is not a valid interface name (1-15 characters from A-Z a-z 0-9 _ . -)", tn.Value)
	} else {
		dp.TUN = tn.Value
	}
	dp.MTU = int(o.integer("mtu", DefaultMTU, MinMTU, MaxMTU))
	items, _ := o.list("addresses")
	for _, it := range items {
		p, err := netip.ParsePrefix(it.s)
		if err != nil || !p.Addr().Is4() && !p.Addr().Is6() {
			d.errf(it.n, o.p("addresses"), "%q is not an address with prefix length such as 169.254.10.1/30", it.s)
			continue
		}
		dp.Addresses = append(dp.Addresses, p)
	}
	dp.Routes = o.boolean("routes", true)
	c.DataPath = dp
}
