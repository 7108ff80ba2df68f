package ike

import (
	"encoding/hex"
	"fmt"
)

// status reports the tunnel for the control API.
func (t *tunnel) status() TunnelStatus {
	st := TunnelStatus{
		Name: t.cfg.Name, LocalAddr: t.cfg.LocalAddr.String(), RemoteAddr: t.cfg.RemoteAddr.String(),
		Phase1State: t.phase1State, Phase2State: t.phase2State, LastError: t.lastError, LastChange: t.lastChange,
		Counters: t.counters, SAs: []SAStatus{},
		Status: t.upDown, LastStatusChange: t.lastStatusChange, DPDState: "off",
		DataIn: t.retiredIn, DataOut: t.retiredOut, PacketsIn: t.retiredPktIn, PacketsOut: t.retiredPktOut,
	}
	if len(t.retiredDrops) > 0 {
		st.Drops = make(map[string]uint64, len(t.retiredDrops))
		for k, v := range t.retiredDrops {
			st.Drops[k] = v
		}
	}
	if t.upDown == "DOWN" {
		st.StatusMessage = t.lastError
		if st.StatusMessage == "" {
			st.StatusMessage = "IPSEC IS DOWN"
		}
	}
	if t.dpd != nil {
		st.DPDState = t.dpd.State().String()
	}
	if sa := t.v2; sa != nil && (t.sa == nil || t.sa.state != stateEstablished) {
		sa.status(&st) // ikev2_status.go
	} else if sa := t.sa; sa != nil {
		st.IKEVersion = "ikev1"
		st.Role, st.Exchange = sa.role(), sa.exchange.String()
		st.ICookie, st.RCookie = hex.EncodeToString(sa.iCookie[:]), hex.EncodeToString(sa.rCookie[:])
		if sa.state == stateEstablished {
			st.Proposal = sa.chosen.String()
			st.Phase1Expires = sa.expires
		}
		st.NATDetected = sa.natDetected()
		st.LocalBehindNAT, st.RemoteBehindNAT, st.Floated = sa.localBehindNAT, sa.remoteBehindNAT, sa.floated
	}
	for _, c := range t.children {
		st.SAs = append(st.SAs, SAStatus{
			Protocol: protoName(c.pair.Inbound.Protocol), Mode: c.pair.Mode.String(), UDPEncap: c.pair.UDPEncap,
			InboundSPI: fmt.Sprintf("%08x", c.pair.Inbound.SPI), OutboundSPI: fmt.Sprintf("%08x", c.pair.Outbound.SPI),
			Proposal: c.proposal.String(), LocalTS: c.pair.LocalTS.String(), RemoteTS: c.pair.RemoteTS.String(),
			Established: c.established, Expires: c.expires, RekeyAt: c.rekeyAt,
		})
	}
	return st
}
