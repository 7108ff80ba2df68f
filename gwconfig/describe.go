package gwconfig

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/vpnlab/vpnlab/ike/policy"
)

// Phase1Names returns the strongSwan-style names of proposals.
func Phase1Names(ps []policy.Phase1Proposal) []string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = FormatPhase1(p)
	}
	return s
}

// Phase2Names returns the strongSwan-style names of proposals.
func Phase2Names(ps []policy.Phase2Proposal) []string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = FormatPhase2(p)
	}
	return s
}

// DescribeTunnel returns one line with a tunnel's effective settings and
// proposals, for the startup log. It never contains the pre-shared key.
func DescribeTunnel(t *policy.Tunnel) string {
	localID, remoteID := describeIDs(t)
	return fmt.Sprintf("tunnel=%s local=%s remote=%s:%d/%d local_id=%s remote_id=%s ike_versions=%s startup=%s ike_mode=%s allow_aggressive=%t "+
		"phase1=[%s] phase1_selection=%s phase1_lifetime=%s "+
		"phase2=[%s] phase2_selection=%s phase2_lifetime=%s phase2_lifetime_kb=%d mode=%s local_ts=%s remote_ts=%s "+
		"rekey_margin=%s rekey_fuzz=%d%% replay_window=%d dpd_delay=%s dpd_timeout=%s dpd_action=%s nat_traversal=%t nat_keepalive=%s force_encap=%t",
		t.Name, t.LocalAddr, t.RemoteAddr, t.RemotePorts.IKE, t.RemotePorts.NATT, localID, remoteID,
		strings.Join(VersionNames(t.Versions()), ","), t.StartupAction, t.Phase1.Exchange, t.Phase1.AllowAggressive,
		strings.Join(Phase1Names(t.Phase1.Proposals), " "), t.Phase1.Selection, t.Phase1.Lifetime,
		strings.Join(Phase2Names(t.Phase2.Proposals), " "), t.Phase2.Selection, t.Phase2.Lifetime, t.Phase2.LifetimeKB,
		t.Phase2.Mode, t.Phase2.LocalTS, t.Phase2.RemoteTS,
		t.RekeyMargin, t.RekeyFuzz, t.Phase2.ReplayWindow, t.DPDDelay, t.DPDTimeout, t.DPDAction, t.NATT, natKeepalive(t.NATKeepalive), t.ForceEncap)
}

// describeIDs names the tunnel's identities in strongSwan's notation: an
// FQDN or KEY_ID identity (IKEv2) or the address; "any" for no remote one.
func describeIDs(t *policy.Tunnel) (local, remote string) {
	local, remote = t.LocalID.String(), "any"
	if t.LocalIdentity.IsSet() {
		local = t.LocalIdentity.String()
	}
	switch {
	case t.RemoteIdentity.IsSet():
		remote = t.RemoteIdentity.String()
	case t.RemoteID.IsValid():
		remote = t.RemoteID.String()
	}
	return local, remote
}

func natKeepalive(d time.Duration) string {
	switch {
	case d < 0:
		return "off"
	case d == 0:
		return DefaultNATKeepalive.String()
	}
	return d.String()
}

// Describe returns one line with the tunnel's routing settings (connection,
// inside addresses, BGP neighbor, static routes), for the startup log next
// to DescribeTunnel.
func (t *Tunnel) Describe() string {
	conn := t.Connection
	if conn == "" {
		conn = "none"
	}
	s := fmt.Sprintf("connection=%s", conn)
	if t.Inside.IsValid() {
		s += fmt.Sprintf(" inside=%s local_inside=%s peer_inside=%s", t.Inside, t.LocalInside, t.PeerInside)
	} else {
		s += " inside=none"
	}
	if t.PeerASN != 0 {
		s += fmt.Sprintf(" bgp_peer_asn=%d med=%d as_path_prepend=%d", t.PeerASN, t.MED, t.Prepend)
	}
	if len(t.StaticRoutes) > 0 {
		s += fmt.Sprintf(" static_routes=%v", t.StaticRoutes)
	}
	if t.MSSClamp != 0 {
		s += fmt.Sprintf(" mss_clamp=%d", t.MSSClamp)
	}
	if t.OutsideMTU != 0 {
		s += fmt.Sprintf(" outside_mtu=%d", t.OutsideMTU)
	}
	return s
}

// describe returns the routing settings on one line: mode, ECMP, route
// limit and, in bgp mode, the BGP speaker's settings.
func (r Routing) describe(g *BGP) string {
	s := fmt.Sprintf("routing=%s ecmp=%t route_limit=%d", r.Mode, r.ECMP, r.RouteLimit)
	if g != nil {
		s += " " + g.describe()
	}
	return s
}

func (g *BGP) describe() string {
	return fmt.Sprintf("bgp_asn=%d bgp_peer_asn=%d router_id=%s hold_time=%s keepalive=%s connect_retry=%s passive=%t bgp_port=%d advertise=%v",
		g.ASN, g.PeerASN, addrOrNone(g.RouterID), g.HoldTime, g.Keepalive, g.ConnectRetry, g.Passive, g.Port, g.Advertise)
}

func addrOrNone(a netip.Addr) string {
	if !a.IsValid() {
		return "none"
	}
	return a.String()
}

// Describe returns one line describing the whole configuration (profile,
// ports, and each tunnel's effective proposals), for a startup log line. It
// never contains a pre-shared key.
func (c *Config) Describe() string {
	parts := []string{fmt.Sprintf("profile=%s ike_port=%d natt_port=%d control=%s key_log=%s lab_timers=%t tunnels=%d %s",
		c.Profile, c.IKE.Ports.IKE, c.IKE.Ports.NATT, c.Control, onOff(c.KeyLog), c.LabTimers, len(c.IKE.Tunnels), c.Routing.describe(c.BGP))}
	if imps := c.impairSpecs(); len(imps) > 0 {
		parts[0] += " impair=" + strings.Join(imps, ",")
	}
	for i := range c.IKE.Tunnels {
		s := DescribeTunnel(&c.IKE.Tunnels[i])
		if i < len(c.Tunnels) {
			s += " " + c.Tunnels[i].Describe()
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

func onOff(path string) string {
	if path == "" {
		return "off"
	}
	return path
}

// String is Describe.
func (c *Config) String() string { return c.Describe() }

// Summary returns a multi-line, human-readable summary of the effective
// configuration (what --check prints). It never contains a pre-shared key.
func (c *Config) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "profile:            %s\n", c.Profile)
	if c.File != "" {
		fmt.Fprintf(&b, "file:               %s\n", c.File)
	}
	fmt.Fprintf(&b, "log:                format=%s level=%s\n", c.Log.Format, c.Log.Level)
	fmt.Fprintf(&b, "control:            %s\n", c.Control)
	fmt.Fprintf(&b, "key_log:            %s\n", onOff(c.KeyLog))
	fmt.Fprintf(&b, "capture:            %s\n", onOff(c.Capture))
	if dp := c.DataPath; dp != nil {
		fmt.Fprintf(&b, "data_path:          tun %s mtu %d addresses %v routes %t\n", dp.TUN, dp.MTU, dp.Addresses, dp.Routes)
	} else {
		fmt.Fprintf(&b, "data_path:          none (IKE only: SAs are negotiated but carry no traffic)\n")
	}
	fmt.Fprintf(&b, "lab_timers:         %t\n", c.LabTimers)
	fmt.Fprintf(&b, "ike:                port=%d natt_port=%d retransmit=%s x%g tries=%d max_half_open=%d\n",
		c.IKE.Ports.IKE, c.IKE.Ports.NATT, c.IKE.RetransmitTimeout, c.IKE.RetransmitBase, c.IKE.RetransmitTries, c.IKE.MaxHalfOpen)
	if imps := c.impairSpecs(); len(imps) > 0 {
		fmt.Fprintf(&b, "impair:             %s\n", strings.Join(imps, ", "))
	}
	fmt.Fprintf(&b, "routing:            mode %s, ecmp %t, route_limit %d\n", c.Routing.Mode, c.Routing.ECMP, c.Routing.RouteLimit)
	if g := c.BGP; g != nil {
		fmt.Fprintf(&b, "bgp:                asn %d, peer_asn %d, router_id %s, port %d\n", g.ASN, g.PeerASN, addrOrNone(g.RouterID), g.Port)
		fmt.Fprintf(&b, "  timers:           hold_time %s, keepalive %s, connect_retry %s, passive %t\n", g.HoldTime, g.Keepalive, g.ConnectRetry, g.Passive)
		fmt.Fprintf(&b, "  advertise:        %s\n", prefixesOrNone(g.Advertise))
	}
	for i := range c.IKE.Tunnels {
		t := &c.IKE.Tunnels[i]
		localID, remoteID := describeIDs(t)
		fmt.Fprintf(&b, "tunnel %s:\n", t.Name)
		fmt.Fprintf(&b, "  local:            %s (id %s)\n", t.LocalAddr, localID)
		fmt.Fprintf(&b, "  remote:           %s ports %d/%d (id %s)\n", t.RemoteAddr, t.RemotePorts.IKE, t.RemotePorts.NATT, remoteID)
		fmt.Fprintf(&b, "  psk:              %s (%s)\n", t.PSK, pskState(t.PSK))
		fmt.Fprintf(&b, "  ike_versions:     %s (initiates with %s)\n", strings.Join(VersionNames(t.Versions()), ", "), t.InitiatorVersion())
		fmt.Fprintf(&b, "  startup_action:   %s\n", t.StartupAction)
		fmt.Fprintf(&b, "  ike_mode:         %s (accept aggressive: %t)\n", t.Phase1.Exchange, t.Phase1.AllowAggressive)
		fmt.Fprintf(&b, "  phase1:           %d proposals, selection %s, lifetime %s\n", len(t.Phase1.Proposals), t.Phase1.Selection, t.Phase1.Lifetime)
		writeWrapped(&b, "    ", Phase1Names(t.Phase1.Proposals))
		fmt.Fprintf(&b, "  phase2:           %d proposals, selection %s, lifetime %s, lifetime_kb %d, mode %s\n",
			len(t.Phase2.Proposals), t.Phase2.Selection, t.Phase2.Lifetime, t.Phase2.LifetimeKB, t.Phase2.Mode)
		writeWrapped(&b, "    ", Phase2Names(t.Phase2.Proposals))
		fmt.Fprintf(&b, "  traffic:          %s <=> %s\n", t.Phase2.LocalTS, t.Phase2.RemoteTS)
		fmt.Fprintf(&b, "  rekey:            margin %s, fuzz %d%%\n", t.RekeyMargin, t.RekeyFuzz)
		fmt.Fprintf(&b, "  replay_window:    %d\n", t.Phase2.ReplayWindow)
		fmt.Fprintf(&b, "  dpd:              delay %s, timeout %s, action %s\n", t.DPDDelay, t.DPDTimeout, t.DPDAction)
		fmt.Fprintf(&b, "  nat_traversal:    %t (force_encap %t, nat_keepalive %s)\n", t.NATT, t.ForceEncap, natKeepalive(t.NATKeepalive))
		if i < len(c.Tunnels) {
			x := &c.Tunnels[i]
			if x.Connection != "" {
				fmt.Fprintf(&b, "  connection:       %s\n", x.Connection)
			}
			if x.Inside.IsValid() {
				fmt.Fprintf(&b, "  inside:           %s (local %s, peer %s)\n", x.Inside, x.LocalInside, x.PeerInside)
			}
			if x.PeerASN != 0 {
				fmt.Fprintf(&b, "  bgp neighbor:     %s asn %d, med %d, as_path_prepend %d\n", x.PeerInside, x.PeerASN, x.MED, x.Prepend)
			}
			if len(x.StaticRoutes) > 0 {
				fmt.Fprintf(&b, "  static_routes:    %s\n", prefixesOrNone(x.StaticRoutes))
			}
		}
	}
	for _, w := range c.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	return b.String()
}

func prefixesOrNone(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "none"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, " ")
}

func pskState(s policy.Secret) string {
	if len(s) == 0 {
		return "missing"
	}
	return "set"
}

// writeWrapped writes names, several per line, each line indented.
func writeWrapped(b *strings.Builder, indent string, names []string) {
	line := indent
	for _, n := range names {
		if len(line) > len(indent) && len(line)+1+len(n) > 100 {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += n
	}
	if len(line) > len(indent) {
		b.WriteString(line + "\n")
	}
}
