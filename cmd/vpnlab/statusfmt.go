package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/ike/status"
)

// writeSAs prints the status in the spirit of strongSwan's swanctl
// --list-sas: per tunnel a header line with the AWS states, the ISAKMP SA
// (IKE version, exchange, role, proposal, cookies, lifetime left), then each
// IPsec SA pair with its SPIs, proposal, traffic selectors, byte and packet
// counters and when it rekeys. now is the reference for "in"/"ago".
func writeSAs(w io.Writer, st status.Snapshot, now time.Time) {
	if len(st.Tunnels) == 0 {
		fmt.Fprintln(w, "no tunnels configured")
	}
	for i := range st.Tunnels {
		writeTunnel(w, &st.Tunnels[i], now)
	}
	if n := sumDrops(st.DataPathDrops); n > 0 {
		fmt.Fprintf(w, "data path drops outside any SA: %s\n", dropList(st.DataPathDrops))
	}
}

func writeTunnel(w io.Writer, t *status.Tunnel, now time.Time) {
	head := fmt.Sprintf("%s: %s, phase 1 %s, phase 2 %s", t.Name, orDash(t.Status), t.Phase1State, t.Phase2State)
	if t.BGPState != "" {
		head += fmt.Sprintf(", BGP %s (%d routes accepted)", t.BGPState, t.AcceptedRouteCount)
	}
	if !t.LastStatusChange.IsZero() {
		head += ", since " + ago(now, t.LastStatusChange)
	}
	fmt.Fprintln(w, head)
	if t.StatusMessage != "" && t.Status != "UP" {
		fmt.Fprintf(w, "  status: %s\n", t.StatusMessage)
	}
	nat := "no NAT"
	switch {
	case t.LocalBehindNAT && t.RemoteBehindNAT:
		nat = "NAT on both sides"
	case t.LocalBehindNAT:
		nat = "local side behind NAT"
	case t.RemoteBehindNAT:
		nat = "remote side behind NAT"
	}
	if t.Floated {
		nat += ", IKE on the NAT-T port"
	}
	fmt.Fprintf(w, "  local %s  remote %s  %s  DPD %s\n", t.LocalAddr, t.RemoteAddr, nat, orDash(t.DPDState))
	if t.ICookie != "" {
		line := "  IKE SA: " + ikeSADesc(t)
		if t.Proposal != "" {
			line += ", " + t.Proposal
		}
		if !t.Phase1Expires.IsZero() {
			line += ", expires " + in(now, t.Phase1Expires)
		}
		fmt.Fprintln(w, line)
	}
	for i := range t.SAs {
		writeChild(w, &t.SAs[i], now)
	}
	k := t.Counters
	fmt.Fprintf(w, "  traffic: in %d bytes %d packets, out %d bytes %d packets (every SA of the tunnel)\n", t.DataIn, t.PacketsIn, t.DataOut, t.PacketsOut)
	if n := sumDrops(t.Drops); n > 0 {
		fmt.Fprintf(w, "  drops: %s\n", dropList(t.Drops))
	}
	fmt.Fprintf(w, "  IKE: %d messages in, %d out, %d retransmitted; rekeys: phase 1 %d, phase 2 %d; DPD: %d probes, %d timeouts\n",
		k.MessagesIn, k.MessagesOut, k.Retransmits, k.Phase1Rekeys, k.Phase2Rekeys, k.DPDProbes, k.DPDTimeouts)
	if t.LastError != "" && !(t.Status != "UP" && t.LastError == t.StatusMessage) {
		fmt.Fprintf(w, "  last error: %s\n", t.LastError)
	}
}

func writeChild(w io.Writer, s *status.SA, now time.Time) {
	mode := strings.ToUpper(s.Mode)
	if s.UDPEncap {
		mode += "-in-UDP"
	}
	line := fmt.Sprintf("  IPsec SA: %s %s, %s, established %s", strings.ToUpper(s.Protocol), mode, s.Proposal, ago(now, s.Established))
	if !s.RekeyAt.IsZero() {
		line += ", rekey " + in(now, s.RekeyAt)
	}
	if !s.Expires.IsZero() {
		line += ", expires " + in(now, s.Expires)
	}
	fmt.Fprintln(w, line)
	c := s.Counters
	if c == nil {
		c = &childsa.Counters{}
	}
	last := ""
	if !c.LastInbound.IsZero() {
		last = ", last " + ago(now, c.LastInbound)
	}
	fmt.Fprintf(w, "    in  %s %12d bytes %9d packets%s\n", s.InboundSPI, c.BytesIn, c.PacketsIn, last)
	fmt.Fprintf(w, "    out %s %12d bytes %9d packets\n", s.OutboundSPI, c.BytesOut, c.PacketsOut)
	fmt.Fprintf(w, "    %s === %s\n", s.LocalTS, s.RemoteTS)
	if n := sumDrops(c.Drops); n > 0 {
		fmt.Fprintf(w, "    drops: %s\n", dropList(c.Drops))
	}
}

// ago says how long before now t was ("12s ago").
func ago(now, t time.Time) string {
	return now.Sub(t).Round(time.Second).String() + " ago"
}

// in says how long after now t is ("in 51m0s", or "overdue" if past).
func in(now, t time.Time) string {
	d := t.Sub(now).Round(time.Second)
	if d < 0 {
		return "overdue by " + (-d).String()
	}
	return "in " + d.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func sumDrops(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

// dropList is "icv 1, replay 3": the non-zero reasons in order.
func dropList(m map[string]uint64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	return strings.Join(parts, ", ")
}

// ikeSADesc names the IKE SA's version, exchange, role and SPIs (IKEv1's
// cookies, IKEv2's SPIs: status.Tunnel keeps both in ICookie/RCookie). An
// IKEv1 SA names its phase 1 mode; an IKEv2 SA still negotiating names the
// exchange it is in. A server from before the version field (empty) ran
// IKEv1 only.
func ikeSADesc(t *status.Tunnel) string {
	if t.IKEVersion == "ikev2" {
		s := "IKEv2"
		if t.Phase1State != "Established" && t.Phase1State != "Rekeying" && t.Exchange != "" {
			s += " " + t.Exchange
		}
		return fmt.Sprintf("%s, %s, %s_i %s_r", s, t.Role, t.ICookie, t.RCookie)
	}
	return fmt.Sprintf("IKEv1 %s mode, %s, %s_i %s_r", t.Exchange, t.Role, t.ICookie, t.RCookie)
}
