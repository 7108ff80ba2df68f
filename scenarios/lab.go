package scenarios

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/vishvananda/netlink"

	"github.com/vpnlab/vpnlab/internal/netlab"
)

// The lab's interface names.
const (
	cgwWAN    = "wan0" // cgw -> wan
	wanCust   = "cust0"
	wanPublic = "aws0" // wan -> AWS endpoints (captured)
	vgwWAN    = "wan0"
)

// lab is a scenario's network: namespaces cgw, wan, vgw and one per host.
//
//	host(s) -- cgw 10.99.0.2 -- wan [NAT] 203.0.113.1 -- vgw 203.0.113.10, .20 ... -- host(s)
type lab struct {
	*netlab.Lab
	p        *plan
	cgw, wan *netlab.NS
	vgw      *netlab.NS
	hosts    map[string]*netlab.NS

	mu       sync.Mutex
	impaired map[string][]string // tunnel -> faults in effect
	wanl     wanLab              // WAN emulation (wan.go)

	capStop func() (int, error)
}

// Preflight says what this machine lacks to run a lab (nil: nothing), in
// words a user can act on.
func Preflight() error { return preflight() }

func preflight() error {
	if os.Geteuid() != 0 {
		return errors.New("vpnlab run needs root: it creates network namespaces, veth links, TUN devices and nftables rules (run it with sudo)")
	}
	var missing []string
	for _, tool := range []struct{ bin, pkg string }{{"ip", "iproute2"}, {"nft", "nftables"}} {
		if _, err := exec.LookPath(tool.bin); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", tool.bin, tool.pkg))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing tools: %s; install them with: apt-get install -y iproute2 nftables", strings.Join(missing, ", "))
	}
	if err := netlab.Usable(); err != nil {
		return fmt.Errorf("network namespaces: %v", err)
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return errors.New("/dev/net/tun is missing: the gateways' data path needs TUN devices (modprobe tun; in a container add --device /dev/net/tun)")
	}
	return nil
}

// buildLab creates the namespaces, links, addresses, routes, NAT and the
// empty impairment table. On error the caller still closes the lab.
func buildLab(l *lab) error {
	p := l.p
	var err error
	must := func(e error) {
		if err == nil && e != nil {
			err = e
		}
	}
	addNS := func(role string) *netlab.NS {
		if err != nil {
			return nil
		}
		ns, e := l.AddNS(role)
		must(e)
		return ns
	}
	l.cgw, l.wan, l.vgw = addNS("cgw"), addNS("wan"), addNS("vgw")
	if err != nil {
		return err
	}
	wanCustPrefix := netip.PrefixFrom(wanCustAddr, 24)
	must(l.Link(l.cgw, cgwWAN, p.cgwOutside, l.wan, wanCust, wanCustPrefix))
	for i, t := range p.tunnels {
		a := netip.PrefixFrom(t.AWSOutside, 24)
		if i == 0 {
			must(l.Link(l.wan, wanPublic, netip.PrefixFrom(wanPublicAddr, 24), l.vgw, vgwWAN, a))
		} else {
			must(l.vgw.AddAddr(vgwWAN, a))
		}
	}
	must(l.cgw.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), wanCustAddr))
	if !p.nat {
		must(l.vgw.AddRoute(custNet, wanPublicAddr))
	}
	for _, ns := range []*netlab.NS{l.cgw, l.wan, l.vgw} {
		must(ns.EnableForwarding())
	}
	nat := ""
	if p.nat {
		// "random": a new mapping (after flush-nat) gets a new port, as a
		// real NAT's would.
		nat = fmt.Sprintf("table ip vpnlab_nat {\n  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n    oifname %q ip saddr %s masquerade random\n  }\n}\n", wanPublic, custNet)
	}
	must(l.wan.Nft(nat + "table inet vpnlab_impair {\n  chain forward {\n    type filter hook forward priority -10; policy accept;\n  }\n}\n"))
	if err != nil {
		return err
	}
	for i, h := range p.hosts {
		ns := addNS(h.role)
		if err != nil {
			return err
		}
		l.hosts[h.Name] = ns
		gw := l.cgw
		if h.Side == "aws" {
			gw = l.vgw
		}
		must(l.Link(ns, "lan0", h.Addr, gw, fmt.Sprintf("lan%d", i), netip.PrefixFrom(h.GW, h.Addr.Bits())))
		must(ns.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), h.GW))
	}
	// The other side's host networks never leave a gateway in the clear:
	// without a tunnel route they hit a blackhole (metric above the data
	// path's routes) instead of the WAN default route.
	for _, n := range p.hostNets("aws") {
		must(l.cgw.AddBlackholeRoute(n, 4000))
	}
	for _, n := range p.hostNets("customer") {
		must(l.vgw.AddBlackholeRoute(n, 4000))
	}
	return err
}

// nodeNS returns the namespace and address of a host or gateway name (a
// gateway's address: cgw its outside address, vgw its first tunnel's).
func (l *lab) nodeNS(name string) (*netlab.NS, netip.Addr) {
	switch name {
	case "cgw":
		return l.cgw, l.p.cgwOutside.Addr()
	case "vgw":
		return l.vgw, l.p.tunnels[0].AWSOutside
	}
	return l.hosts[name], l.p.host(name).Addr.Addr()
}

// impair adds a fault to a tunnel's outside path in the WAN router: the
// packets to and from the tunnel's AWS endpoint pass a chain per tunnel.
func (l *lab) impair(tunnel, fault string, percent float64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if fault == "flush-nat" {
		return l.flushNAT()
	}
	l.noteFault(tunnel, fault, percent)
	if l.wanl.f != nil { // the forwarder carries the tunnels: it applies the fault
		return l.applyWAN()
	}
	var targets []*planTunnel
	if tunnel == "all" {
		targets = l.p.tunnels
	} else {
		targets = []*planTunnel{l.p.tunnel(tunnel)}
	}
	var rules []string
	switch fault {
	case "blackhole":
		rules = []string{"counter drop"}
	case "loss":
		rules = []string{fmt.Sprintf("numgen random mod 10000 < %d counter drop", int(percent*100+0.5))}
	case "drop-ike":
		// IKE: UDP 500, and UDP 4500 with the 4-byte non-ESP marker (RFC 3948).
		rules = []string{"udp dport 500 counter drop", "udp sport 500 counter drop",
			"udp dport 4500 @th,64,32 0 counter drop", "udp sport 4500 @th,64,32 0 counter drop"}
	case "drop-esp":
		rules = []string{"meta l4proto esp counter drop",
			"udp dport 4500 @th,64,32 != 0 counter drop", "udp sport 4500 @th,64,32 != 0 counter drop"}
	default:
		return fmt.Errorf("unknown fault %q", fault)
	}
	var b strings.Builder
	for _, t := range targets {
		chain := "t_" + sanitizeChain(t.Name)
		if _, ok := l.impaired[t.Name]; !ok {
			fmt.Fprintf(&b, "add chain inet vpnlab_impair %s\n", chain)
			fmt.Fprintf(&b, "add rule inet vpnlab_impair forward ip daddr %s jump %s\n", t.AWSOutside, chain)
			fmt.Fprintf(&b, "add rule inet vpnlab_impair forward ip saddr %s jump %s\n", t.AWSOutside, chain)
			l.impaired[t.Name] = []string{}
		}
		for _, r := range rules {
			fmt.Fprintf(&b, "add rule inet vpnlab_impair %s %s\n", chain, r)
		}
		l.impaired[t.Name] = append(l.impaired[t.Name], fault)
	}
	return l.wan.Nft(b.String())
}

// restore removes every fault of a tunnel ("all": of every tunnel).
func (l *lab) restore(tunnel string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.restoreWAN(tunnel) {
		return l.applyWAN()
	}
	var b strings.Builder
	for _, t := range l.p.tunnels {
		if tunnel != "all" && t.Name != tunnel {
			continue
		}
		if _, ok := l.impaired[t.Name]; ok {
			fmt.Fprintf(&b, "flush chain inet vpnlab_impair t_%s\n", sanitizeChain(t.Name))
			l.impaired[t.Name] = []string{}
		}
	}
	if b.Len() == 0 {
		return nil
	}
	return l.wan.Nft(b.String())
}

func sanitizeChain(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// flushNAT deletes every connection-tracking entry of the WAN router, so
// the next packet of each flow gets a new NAT mapping (a new port).
func (l *lab) flushNAT() error {
	return l.wan.Do(func() error {
		h, err := netlink.NewHandle()
		if err != nil {
			return err
		}
		defer h.Close()
		return h.ConntrackTableFlush(netlink.ConntrackTable)
	})
}

// startCapture records the WAN link to the AWS side into path (pcap).
func (l *lab) startCapture(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		f.Close()
		return err
	}
	var h *pcapgo.EthernetHandle
	err = l.wan.Do(func() error {
		var e error
		h, e = pcapgo.NewEthernetHandle(wanPublic)
		return e
	})
	if err != nil {
		f.Close()
		return fmt.Errorf("capture on the WAN: %v", err)
	}
	done := make(chan struct{})
	n := 0
	var werr error
	go func() {
		defer close(done)
		for {
			data, ci, err := h.ReadPacketData()
			if err != nil {
				return // closed
			}
			if werr == nil {
				werr = w.WritePacket(ci, data)
				n++
			}
		}
	}()
	l.capStop = func() (int, error) {
		h.Close()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
		if err := f.Close(); werr == nil {
			werr = err
		}
		return n, werr
	}
	return nil
}
