package datapath

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/tun"
)

// TUNConfig describes the inside TUN device of a gateway.
type TUNConfig struct {
	Name      string         // e.g. "vpnlab0"
	MTU       int            // e.g. 1400
	Addresses []netip.Prefix // inside addresses (e.g. the BGP /30s)
}

// OpenTUN creates the TUN device in the calling thread's network namespace,
// sets its MTU and addresses and brings it up. The device disappears when
// it is closed.
func OpenTUN(c TUNConfig) (tun.Device, error) {
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return nil, fmt.Errorf("TUN device %s: /dev/net/tun is missing (%v): load the tun module or run in a system with TUN support", c.Name, err)
	}
	dev, err := tun.CreateTUN(c.Name, c.MTU)
	if err != nil {
		hint := ""
		if errors.Is(err, os.ErrPermission) || strings.Contains(err.Error(), "operation not permitted") {
			hint = " (needs root or CAP_NET_ADMIN)"
		} else if strings.Contains(err.Error(), "busy") {
			hint = " (a device of that name exists: another gateway in this namespace?)"
		}
		return nil, fmt.Errorf("TUN device %s: %w%s", c.Name, err, hint)
	}
	link, err := netlink.LinkByName(c.Name)
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("TUN device %s: %w", c.Name, err)
	}
	for _, a := range c.Addresses {
		if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: prefixToIPNet(a)}); err != nil {
			dev.Close()
			return nil, fmt.Errorf("TUN device %s: add address %s: %w", c.Name, a, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		dev.Close()
		return nil, fmt.Errorf("TUN device %s: set up: %w", c.Name, err)
	}
	return dev, nil
}

// AddRoute routes prefix into the TUN device called name (replacing an
// existing route to the same prefix in the main table).
func AddRoute(name string, prefix netip.Prefix) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("route %s via %s: %w", prefix, name, err)
	}
	r := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: prefixToIPNet(prefix.Masked()), Scope: netlink.SCOPE_LINK}
	if err := netlink.RouteReplace(r); err != nil {
		return fmt.Errorf("route %s via %s: %w", prefix, name, err)
	}
	return nil
}

// DelRoute removes the route of prefix into the TUN device called name; a
// route or device that is already gone is not an error.
func DelRoute(name string, prefix netip.Prefix) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return nil // the device is gone, and its routes with it
	}
	r := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: prefixToIPNet(prefix.Masked()), Scope: netlink.SCOPE_LINK}
	if err := netlink.RouteDel(r); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("removing route %s via %s: %w", prefix, name, err)
	}
	return nil
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)}
}

// Transport mode protects traffic to the peer's own outside address, which
// is also where IKE and the protected packets go. The data path tells them
// apart by a socket mark: its own sockets (IKE, NAT-T, raw) carry
// OutsideMark, and a policy rule sends every unmarked packet to the peer
// into the TUN device (table TransportTable).
const (
	OutsideMark    = 0x7670 // "vp"
	TransportTable = 30320
	transportPrio  = 1000
)

// AddTransportRoute routes unmarked packets to peer into the TUN device
// called name, with source address local. The returned function removes
// the rule (the route goes with the device).
func AddTransportRoute(name string, local, peer netip.Addr) (func(), error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("transport route to %s: %w", peer, err)
	}
	dst := prefixToIPNet(netip.PrefixFrom(peer, peer.BitLen()))
	r := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: dst, Src: local.AsSlice(), Scope: netlink.SCOPE_LINK, Table: TransportTable}
	if err := netlink.RouteReplace(r); err != nil {
		return nil, fmt.Errorf("transport route to %s via %s: %w", peer, name, err)
	}
	rule := netlink.NewRule()
	rule.Priority = transportPrio
	rule.Table = TransportTable
	rule.Mark = OutsideMark
	mask := uint32(0xffffffff)
	rule.Mask = &mask
	rule.Invert = true
	rule.Dst = dst
	if err := netlink.RuleAdd(rule); err != nil {
		return nil, fmt.Errorf("transport policy rule to %s: %w", peer, err)
	}
	return func() { _ = netlink.RuleDel(rule) }, nil
}
