package export

import (
	"fmt"
	"strings"
	"time"
)

// genFRR writes an FRR (8.x) frr.conf fragment for bgpd: one eBGP neighbor
// per tunnel over its inside /30, AWS's timers, the customer's prefixes
// announced with network statements (no RIB route needed), everything from
// AWS accepted.
func genFRR(m *model) ([]File, error) {
	ts, err := m.bgpTunnels()
	if err != nil {
		return nil, err
	}
	asn := ts[0].cgwASN
	var b strings.Builder
	b.WriteString(m.header("!", "FRR configuration (bgpd): eBGP with AWS over each tunnel's inside /30.", false))
	b.WriteString("! The inside addresses are put on the tunnel interfaces by the IPsec side.\n")
	b.WriteString("! Load with: vtysh -f frr.conf (check first: vtysh --dryrun -f frr.conf)\n!\n")
	b.WriteString("frr defaults traditional\n!\n")
	if len(m.advertise) == 0 {
		b.WriteString("! no customer prefixes given (vpnlab export --advertise CIDR): nothing is announced\nip prefix-list CUSTOMER-PREFIXES seq 5 deny any\n")
	}
	for i, p := range m.advertise {
		fmt.Fprintf(&b, "ip prefix-list CUSTOMER-PREFIXES seq %d permit %s\n", 5*(i+1), p)
	}
	b.WriteString("!\nroute-map AWS-IN permit 10\nexit\n!\nroute-map AWS-OUT permit 10\n match ip address prefix-list CUSTOMER-PREFIXES\nexit\n!\n")
	fmt.Fprintf(&b, "router bgp %d\n bgp router-id %s\n", asn, ts[0].cgwInside.Addr())
	b.WriteString(" ! announce the customer's prefixes whether or not they are in the RIB\n no bgp network import-check\n")
	hold, ka := int(m.bgp.HoldTime/time.Second), int(m.bgp.Keepalive/time.Second)
	for _, t := range ts {
		n := t.awsInside
		fmt.Fprintf(&b, " ! tunnel %s%s\n", t.name, connSuffix(t))
		fmt.Fprintf(&b, " neighbor %s remote-as %d\n", n, m.bgp.ASN)
		if t.cgwASN != asn {
			fmt.Fprintf(&b, " neighbor %s local-as %d no-prepend replace-as\n", n, t.cgwASN)
		}
		fmt.Fprintf(&b, " neighbor %s description %s\n", n, t.name)
		if m.bgp.Port != 179 {
			fmt.Fprintf(&b, " neighbor %s port %d\n", n, m.bgp.Port)
		}
		fmt.Fprintf(&b, " neighbor %s update-source %s\n", n, t.cgwInside.Addr())
		fmt.Fprintf(&b, " neighbor %s timers %d %d\n", n, ka, hold)
		fmt.Fprintf(&b, " neighbor %s timers connect %d\n", n, int(cgwConnectRetry/time.Second))
	}
	b.WriteString(" !\n address-family ipv4 unicast\n")
	for _, p := range m.advertise {
		fmt.Fprintf(&b, "  network %s\n", p)
	}
	for _, t := range ts {
		n := t.awsInside
		fmt.Fprintf(&b, "  neighbor %s activate\n  neighbor %s route-map AWS-IN in\n  neighbor %s route-map AWS-OUT out\n", n, n, n)
	}
	b.WriteString(" exit-address-family\nexit\n!\n")
	return []File{{Name: "frr.conf", Mode: 0o644, Data: []byte(b.String())}}, nil
}
