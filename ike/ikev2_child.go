package ike

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/ike/ikev2/exchange"
	"github.com/vpnlab/vpnlab/ike/ikev2/keymat"
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// The first child SA of an IKEv2 SA, negotiated in IKE_AUTH (RFC 7296
// sections 1.2, 2.9, 2.17, 3.3): the policy's phase 2 as an ESP SA
// payload (ikev2_policy.go), the traffic selectors with the responder's
// narrowing (exchange.Narrow, TS_UNACCEPTABLE) and the initiator's check
// (exchange.CheckNarrowed), USE_TRANSPORT_MODE, KEYMAT from SK_d and the
// IKE_SA_INIT nonces (keymat.DeriveChild), and the pair installed through
// the data path as IKEv1's quick mode installs it, with UDP encapsulation
// when a NAT was detected.

// v2Child is a child SA being negotiated.
type v2Child struct {
	spiIn, spiOut     uint32
	offer             *wire.SA // initiator: our SA payload
	tsi, tsr          *wire.TS // initiator: our selectors
	transport         bool
	chosen            *exchange.Choice
	localTS, remoteTS netip.Prefix
}

// childRequestPayloads allocates our SPI and returns the initiator's SA,
// TSi, TSr (and USE_TRANSPORT_MODE) for IKE_AUTH.
func (sa *ikev2SA) childRequestPayloads() ([]wire.Payload, error) {
	t := sa.t
	spi, err := sa.e.dp.AllocateSPI(isakmp.ProtoESP)
	if err != nil {
		return nil, fmt.Errorf("allocate SPI: %w", err)
	}
	c := &v2Child{spiIn: spi, transport: t.cfg.Phase2.Mode == childsa.ModeTransport}
	c.offer = childOffer(t.cfg.Phase2.Proposals, spi, false)
	c.tsi = &wire.TS{Selectors: []wire.Selector{wire.SelectorFromPrefix(t.cfg.Phase2.LocalTS)}}
	c.tsr = &wire.TS{Responder: true, Selectors: []wire.Selector{wire.SelectorFromPrefix(t.cfg.Phase2.RemoteTS)}}
	sa.child = c
	var ps []wire.Payload
	if c.transport {
		ps = append(ps, &wire.Notify{NotifyType: wire.NotifyUseTransportMode})
	}
	return append(ps, c.offer, c.tsi, c.tsr), nil
}

func findTS(ps []wire.Payload, responder bool) *wire.TS {
	for _, p := range ps {
		if x, ok := p.(*wire.TS); ok && x.Responder == responder {
			return x
		}
	}
	return nil
}

// onePrefix returns the prefix a single selector covers: the data path
// takes one prefix per side.
func onePrefix(ts *wire.TS) (netip.Prefix, error) {
	if ts == nil || len(ts.Selectors) == 0 {
		return netip.Prefix{}, errors.New("no selector")
	}
	ps := ts.Selectors[0].Prefixes()
	if len(ps) != 1 {
		return netip.Prefix{}, fmt.Errorf("selector %s is not one prefix", ts.Selectors[0])
	}
	return ps[0], nil
}

// answerChild is the responder's child SA: the reply payloads, or an
// error notify (the IKE SA is made without the child, section 2.21.2).
// failure, when set, is why the child SA was refused: the caller reports
// it once the IKE SA is established.
func (sa *ikev2SA) answerChild(ps []wire.Payload) (out []wire.Payload, child *v2Child, failure string) {
	t := sa.t
	refuse := func(nt wire.NotifyType, why string) ([]wire.Payload, *v2Child, string) {
		sa.logger().WithField("notify", nt.String()).Warn("child SA refused: " + why)
		t.counters.NotifiesSent++
		return []wire.Payload{&wire.Notify{NotifyType: nt}}, nil, why + " (answered " + nt.String() + ")"
	}
	saP, tsi, tsr := findSA(ps), findTS(ps, false), findTS(ps, true)
	if saP == nil {
		sa.logger().Info("IKE_AUTH without a child SA (no SA payload)")
		return nil, nil, ""
	}
	pol, err := childPolicy(t.cfg.Phase2.Proposals)
	if err != nil {
		return refuse(wire.NotifyNoProposalChosen, err.Error())
	}
	choice, err := exchange.Select(saP, pol, exchange.Options{Rule: v2Rule(t.cfg.Phase2.Selection), IgnoreDH: true})
	if err != nil {
		return refuse(errNotify(err, wire.NotifyNoProposalChosen), "no proposal chosen for the child SA: "+err.Error())
	}
	if len(choice.PeerSPI) != 4 {
		return refuse(wire.NotifyInvalidSyntax, "child SA proposal without a 4-byte SPI")
	}
	remote := []wire.Selector{wire.SelectorFromPrefix(t.cfg.Phase2.RemoteTS)}
	local := []wire.Selector{wire.SelectorFromPrefix(t.cfg.Phase2.LocalTS)}
	nar, err := exchange.Narrow(tsi, tsr, remote, local)
	if err != nil {
		return refuse(errNotify(err, wire.NotifyTSUnacceptable), "traffic selectors unacceptable: "+err.Error())
	}
	c := &v2Child{chosen: choice, spiOut: binary.BigEndian.Uint32(choice.PeerSPI)}
	c.transport = wire.FindNotify(ps, wire.NotifyUseTransportMode) != nil && t.cfg.Phase2.Mode == childsa.ModeTransport
	if t.cfg.Phase2.Mode == childsa.ModeTransport && !c.transport {
		return refuse(wire.NotifyNoProposalChosen, "the peer asked for tunnel mode, the tunnel is configured for transport mode")
	}
	if c.remoteTS, err = onePrefix(nar.TSi); err != nil {
		return refuse(wire.NotifyTSUnacceptable, "TSi: "+err.Error())
	}
	if c.localTS, err = onePrefix(nar.TSr); err != nil {
		return refuse(wire.NotifyTSUnacceptable, "TSr: "+err.Error())
	}
	if c.spiIn, err = sa.e.dp.AllocateSPI(isakmp.ProtoESP); err != nil {
		return refuse(wire.NotifyNoAdditionalSAs, "allocate SPI: "+err.Error())
	}
	if c.transport {
		out = append(out, &wire.Notify{NotifyType: wire.NotifyUseTransportMode})
	}
	tsiOut, tsrOut := *nar.TSi, *nar.TSr
	tsiOut.Responder, tsrOut.Responder = false, true
	return append(out, choice.Reply(spiBytes(c.spiIn)), &tsiOut, &tsrOut), c, ""
}

// errNotify is the notify of an exchange refusal, or def.
func errNotify(err error, def wire.NotifyType) wire.NotifyType {
	var xe *exchange.Error
	if errors.As(err, &xe) {
		return xe.Notify
	}
	return def
}

// acceptChild is the initiator's reading of the child SA in the IKE_AUTH
// response.
func (sa *ikev2SA) acceptChild(ps []wire.Payload) {
	t, c := sa.t, sa.child
	if c == nil {
		return
	}
	for _, p := range ps {
		if n, ok := p.(*wire.Notify); ok && n.NotifyType.IsError() {
			t.counters.NotifiesReceived++
			sa.abandonChild("the peer refused the child SA with " + n.NotifyType.String())
			return
		}
	}
	saP, tsi, tsr := findSA(ps), findTS(ps, false), findTS(ps, true)
	if saP == nil || tsi == nil || tsr == nil {
		sa.abandonChild("the IKE_AUTH response has no child SA (SA, TSi, TSr)")
		return
	}
	choice, err := exchange.CheckReply(c.offer, saP)
	if err == nil && len(choice.PeerSPI) != 4 {
		err = errors.New("no 4-byte SPI")
	}
	if err != nil {
		sa.abandonChild("the peer's child SA: " + err.Error())
		return
	}
	if err := exchange.CheckNarrowed(c.tsi, c.tsr, tsi, tsr); err != nil {
		sa.abandonChild("the peer's traffic selectors: " + err.Error())
		return
	}
	if c.transport && wire.FindNotify(ps, wire.NotifyUseTransportMode) == nil {
		sa.abandonChild("the peer did not accept transport mode")
		return
	}
	c.chosen, c.spiOut = choice, binary.BigEndian.Uint32(choice.PeerSPI)
	if c.localTS, err = onePrefix(tsi); err == nil {
		c.remoteTS, err = onePrefix(tsr)
	}
	if err != nil {
		sa.abandonChild("the peer's traffic selectors: " + err.Error())
		return
	}
	sa.installChild(c)
}

// abandonChild gives up the child SA being negotiated (its SPI freed).
func (sa *ikev2SA) abandonChild(reason string) {
	c := sa.child
	if c == nil {
		return
	}
	sa.child = nil
	if c.spiIn != 0 {
		_ = sa.e.dp.Delete(isakmp.ProtoESP, c.spiIn)
	}
	if sa.t != nil && sa.state == v2Established {
		sa.t.onChildFailedV2(reason)
	}
}

// childPair derives the pair's keys (section 2.17: the initiator's
// outbound SA first) and builds what the data path takes.
func (sa *ikev2SA) childPair(c *v2Child) (ChildSAPair, Phase2Proposal, error) {
	keys, err := keymat.DeriveChild(sa.prf, sa.keys.D, nil, sa.ni, sa.nr, c.chosen.Encr, c.chosen.Integ)
	if err != nil {
		return ChildSAPair{}, Phase2Proposal{}, err
	}
	prop := Phase2Proposal{Protocol: isakmp.ProtoESP, Encryption: uint8(c.chosen.Encr.ID), EncKeyBits: c.chosen.Encr.KeyBits,
		Integrity: v2IntegToV1(c.chosen.Integ.ID)}
	mk := func(spi uint32, enc, integ []byte) ChildSA {
		return ChildSA{SPI: spi, Protocol: isakmp.ProtoESP, Encryption: prop.Encryption, EncKey: enc, Integrity: prop.Integrity, IntegKey: integ}
	}
	in, out := mk(c.spiIn, keys.EncrR, keys.IntegR), mk(c.spiOut, keys.EncrI, keys.IntegI)
	if !sa.initiator {
		in, out = mk(c.spiIn, keys.EncrI, keys.IntegI), mk(c.spiOut, keys.EncrR, keys.IntegR)
	}
	t := sa.t
	mode := childsa.ModeTunnel
	if c.transport {
		mode = childsa.ModeTransport
	}
	udp := sa.natDetected()
	pair := ChildSAPair{Tunnel: t.cfg.Name, Inbound: in, Outbound: out, Mode: mode, UDPEncap: udp,
		Local: sa.local, Remote: sa.remote, LocalTS: c.localTS, RemoteTS: c.remoteTS,
		Lifetime: t.cfg.Phase2.Lifetime, LifetimeKB: t.cfg.Phase2.LifetimeKB, ReplayWindow: t.cfg.Phase2.ReplayWindow}
	if !udp {
		pair.Local = netip.AddrPortFrom(sa.local.Addr(), 0)
		pair.Remote = netip.AddrPortFrom(sa.remote.Addr(), 0)
	}
	return pair, prop, nil
}

// installChild hands the pair to the data path and the tunnel.
func (sa *ikev2SA) installChild(c *v2Child) {
	sa.child = nil
	t := sa.t
	pair, prop, err := sa.childPair(c)
	if err == nil {
		err = sa.e.dp.Install(pair)
	}
	if err != nil {
		_ = sa.e.dp.Delete(isakmp.ProtoESP, c.spiIn)
		t.onChildFailedV2("child SA not installed: " + err.Error())
		return
	}
	if sa.e.klog != nil {
		sa.e.klog.ChildKeys(pair)
	}
	ch := &childSA{pair: pair, proposal: prop, initiator: sa.initiator, established: timeNow(), ikev2: sa}
	t.addChild(ch, nil) // tunnel.go
}

// onChildFailedV2 reports a child SA that was not made.
func (t *tunnel) onChildFailedV2(reason string) {
	t.setError("IKEv2 child SA: " + reason)
	t.e.emit(Event{Tunnel: t.cfg.Name, Type: "phase2-failed", Detail: map[string]string{"reason": reason, "ike_version": "ikev2"}})
	if len(t.children) == 0 {
		t.setPhase2State("Down")
	} else {
		t.setPhase2State("Established")
	}
}
