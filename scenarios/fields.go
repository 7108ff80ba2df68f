package scenarios

import (
	"strconv"
	"time"

	"github.com/vpnlab/vpnlab/ike/status"
	"github.com/vpnlab/vpnlab/internal/traffic"
)

// tunnelField reads one field of a tunnel's status as text.
func tunnelField(t *status.Tunnel, field string) string {
	if t == nil {
		return "(gateway not running)"
	}
	if v, ok := sizeField(t, field); ok {
		return v
	}
	if v, ok := tunnelStateField(t, field); ok {
		return v
	}
	if v, ok := sumSAs(t).field(field); ok {
		return v
	}
	if v, ok := ikeCounterField(t.Counters, field); ok {
		return v
	}
	return "(unknown field)"
}

// tunnelStateField reads a field of the tunnel's state as the gateway
// reports it (phases, BGP, DPD, NAT, data totals).
func tunnelStateField(t *status.Tunnel, field string) (string, bool) {
	switch field {
	case "status":
		return t.Status, true
	case "status_message":
		return t.StatusMessage, true
	case "phase1":
		return t.Phase1State, true
	case "phase2":
		return t.Phase2State, true
	case "proposal":
		return t.Proposal, true
	case "nat":
		return strconv.FormatBool(t.NATDetected), true
	case "exchange":
		return t.Exchange, true
	case "ike_version":
		return t.IKEVersion, true
	case "role":
		return t.Role, true
	case "bgp":
		return t.BGPState, true
	case "dpd":
		return t.DPDState, true
	case "routes":
		return strconv.Itoa(t.AcceptedRouteCount), true
	case "data_in":
		return strconv.FormatUint(t.DataIn, 10), true
	case "data_out":
		return strconv.FormatUint(t.DataOut, 10), true
	case "sas":
		return strconv.Itoa(len(t.SAs)), true
	case "last_error":
		return t.LastError, true
	}
	return "", false
}

// saTotals is what a tunnel's IPsec SAs say together: the newest SA, and
// the packet and byte counts of the current pairs with their control
// (link-local, BGP) share.
type saTotals struct {
	newest                   *status.SA
	pin, pout                uint64
	cpin, cpout, cbin, cbout uint64 // control share
	bin, bout                uint64 // bytes of the current pairs
}

func sumSAs(t *status.Tunnel) saTotals {
	var s saTotals
	for i := range t.SAs {
		sa := &t.SAs[i]
		if s.newest == nil || sa.Established.After(s.newest.Established) {
			s.newest = sa
		}
		if c := sa.Counters; c != nil {
			s.pin += c.PacketsIn
			s.pout += c.PacketsOut
			s.cpin, s.cpout, s.cbin, s.cbout = s.cpin+c.ControlPacketsIn, s.cpout+c.ControlPacketsOut, s.cbin+c.ControlBytesIn, s.cbout+c.ControlBytesOut
			s.bin, s.bout = s.bin+c.BytesIn, s.bout+c.BytesOut
		}
	}
	return s
}

// field reads a field of the newest SA or of the SAs' counts.
func (s saTotals) field(field string) (string, bool) {
	sa := func(f func(*status.SA) string) string {
		if s.newest == nil {
			return "(no SA)"
		}
		return f(s.newest)
	}
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	switch field {
	case "ipsec_proposal":
		return sa(func(s *status.SA) string { return s.Proposal }), true
	case "protocol":
		return sa(func(s *status.SA) string { return s.Protocol }), true
	case "mode":
		return sa(func(s *status.SA) string { return s.Mode }), true
	case "udp_encap":
		return sa(func(s *status.SA) string { return strconv.FormatBool(s.UDPEncap) }), true
	case "packets_in":
		return u(s.pin), true
	case "packets_out":
		return u(s.pout), true
	case "user_packets_in": // the current pairs' packets less the link-local (BGP) ones
		return u(s.pin - min(s.cpin, s.pin)), true
	case "user_packets_out":
		return u(s.pout - min(s.cpout, s.pout)), true
	case "user_data_in":
		return u(s.bin - min(s.cbin, s.bin)), true
	case "user_data_out":
		return u(s.bout - min(s.cbout, s.bout)), true
	case "control_packets_in":
		return u(s.cpin), true
	case "control_packets_out":
		return u(s.cpout), true
	}
	return "", false
}

// ikeCounterField reads one of the tunnel's IKE counters.
func ikeCounterField(c status.Counters, field string) (string, bool) {
	var v uint64
	switch field {
	case "phase1_established":
		v = c.Phase1Established
	case "phase2_established":
		v = c.Phase2Established
	case "retransmits":
		v = c.Retransmits
	case "duplicates_answered":
		v = c.DuplicatesAnswered
	case "messages_in":
		v = c.MessagesIn
	case "messages_out":
		v = c.MessagesOut
	case "notifies_sent":
		v = c.NotifiesSent
	case "notifies_received":
		v = c.NotifiesReceived
	default:
		return "", false
	}
	return strconv.FormatUint(v, 10), true
}

func engineCounter(st *status.Snapshot, name string) string {
	if st == nil {
		return "(gateway not running)"
	}
	c := st.Counters
	switch name {
	case "received":
		return strconv.FormatUint(c.Received, 10)
	case "malformed":
		return strconv.FormatUint(c.Malformed, 10)
	case "unknown_cookie":
		return strconv.FormatUint(c.UnknownCookie, 10)
	case "unknown_peer":
		return strconv.FormatUint(c.UnknownPeer, 10)
	case "half_open":
		return strconv.Itoa(c.HalfOpen)
	case "half_open_refused":
		return strconv.FormatUint(c.HalfOpenRefused, 10)
	}
	return "(unknown counter)"
}

// flowField reads one field of a flow's result as text.
func flowField(r traffic.Result, field string) string {
	if v, ok := delayField(r, field); ok {
		return v
	}
	switch field {
	case "sent":
		return strconv.FormatUint(r.Sent, 10)
	case "received":
		return strconv.FormatUint(r.Received, 10)
	case "lost":
		return strconv.FormatUint(r.Lost, 10)
	case "loss_pct":
		return strconv.FormatFloat(r.LossPct, 'f', 2, 64)
	case "reordered":
		return strconv.FormatUint(r.Reordered, 10)
	case "duplicates":
		return strconv.FormatUint(r.Duplicates, 10)
	case "max_gap":
		return r.MaxGap.Round(time.Millisecond).String()
	case "errors":
		return strconv.FormatUint(r.Errors, 10)
	}
	return "(unknown field)"
}
