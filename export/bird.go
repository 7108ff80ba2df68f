package export

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// BGP timers of the customer side that the vgw configuration does not
// decide: how soon a session is tried again. BIRD's defaults (connect retry
// 120 s, error wait 60-300 s) are far too slow for a tunnel whose first SYN
// is lost while the SA comes up.
const (
	cgwConnectRetry = 5 * time.Second
	cgwErrorWaitMin = 5 * time.Second
	cgwErrorWaitMax = 30 * time.Second
)

var birdNameRE = regexp.MustCompile(`[^A-Za-z0-9_]`)

// birdName turns a tunnel name into a BIRD protocol name (letters, digits,
// underscores, starting with a letter): "aws_" + the name.
func birdName(s string) string { return "aws_" + birdNameRE.ReplaceAllString(s, "_") }

func genBIRD(m *model) ([]File, error) {
	ts, err := m.bgpTunnels()
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString(m.header("#", "BIRD 2 configuration: eBGP with AWS over each tunnel's inside /30.", false))
	b.WriteString("# The inside addresses are put on the tunnel interfaces by the IPsec side\n# (e.g. the strongswan export's updown.sh); each session waits for its address.\n")
	fmt.Fprintf(&b, "\nrouter id %s;\n\n", ts[0].cgwInside.Addr())
	b.WriteString("# interfaces and their addresses (a session starts once its /30 is up)\nprotocol device {\n  scan time 5;\n}\n\n")
	b.WriteString("# the routes learnt from AWS go into the kernel's main table\nprotocol kernel {\n  ipv4 {\n    import none;\n    export where source = RTS_BGP;\n  };\n}\n\n")
	b.WriteString("# the customer's prefixes, announced to AWS (blackholes inside BIRD only:\n# never exported to the kernel)\nprotocol static customer_prefixes {\n  ipv4;\n")
	if len(m.advertise) == 0 {
		b.WriteString("  # none given (vpnlab export --advertise CIDR): add e.g. route 10.10.0.0/16 blackhole;\n")
	}
	for _, p := range m.advertise {
		fmt.Fprintf(&b, "  route %s blackhole;\n", p)
	}
	b.WriteString("}\n\n")
	fmt.Fprintf(&b, "# AWS's timers: hold time %d s, keepalive %d s\ntemplate bgp aws {\n", int(m.bgp.HoldTime/time.Second), int(m.bgp.Keepalive/time.Second))
	fmt.Fprintf(&b, "  hold time %d;\n", int(m.bgp.HoldTime/time.Second))
	if m.bgp.Keepalive > 0 {
		fmt.Fprintf(&b, "  keepalive time %d;\n", int(m.bgp.Keepalive/time.Second))
	}
	fmt.Fprintf(&b, "  connect retry time %d;\n  error wait time %d, %d;\n", int(cgwConnectRetry/time.Second), int(cgwErrorWaitMin/time.Second), int(cgwErrorWaitMax/time.Second))
	if m.bgp.Port != 179 {
		fmt.Fprintf(&b, "  # the vgw listens on port %d\n", m.bgp.Port)
	}
	b.WriteString("  ipv4 {\n    import all;\n    export where proto = \"customer_prefixes\";\n  };\n}\n")
	for _, t := range ts {
		fmt.Fprintf(&b, "\n# tunnel %s%s: AWS %s <-> us %s\n", t.name, connSuffix(t), t.awsInside, t.cgwInside.Addr())
		fmt.Fprintf(&b, "protocol bgp %s from aws {\n  local %s as %d;\n  neighbor %s", birdName(t.name), t.cgwInside.Addr(), t.cgwASN, t.awsInside)
		if m.bgp.Port != 179 {
			fmt.Fprintf(&b, " port %d", m.bgp.Port)
		}
		fmt.Fprintf(&b, " as %d;\n}\n", m.bgp.ASN)
	}
	return []File{{Name: "bird.conf", Mode: 0o644, Data: []byte(b.String())}}, nil
}
