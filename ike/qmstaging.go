package ike

import (
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// Staged installation of a phase 2 pair: no packet is lost at a rekey.
//
// Quick mode ends at different moments on the two sides: the initiator
// knows the keys when QM2 arrives and sends QM3, the responder only hears
// that the initiator has them when QM3 arrives. A side that sends on the
// new pair before the other side installed its inbound SA loses those
// packets (unknown SPI). That is what the soak measured before (7 of
// 524,124 packets over 15 rounds of phase 2 rekeys): our initiator moved
// its outbound at QM2, our responder (and strongSwan's: its quick mode
// task installs both directions on QM3, as its initiator does on QM2)
// installed only at QM3.
//
// RFC 2409 section 5.5: the responder has all the keying material (KEYMAT
// from SKEYID_d, the protocol, the SPI, Ni_b, Nr_b and, with PFS, g(qm)^xy)
// when it builds QM2, and HASH(3) is what proves that the initiator got
// QM2. The commit bit of RFC 2408 section 3.1 ("used to ensure that
// encrypted material is not received prior to completion of the SA
// establishment") would make the initiator wait for a CONNECTED notify;
// neither side sets it. Libreswan's responder installs the inbound SA as
// it sends QM2 and the outbound one on QM3 (its quick_inI1_outR1 and
// quick_inI2, "unless the commit bit is set"); the Linux kernel's SA
// database makes that natural: an inbound SA is found by SPI, the outbound
// one by policy, so an inbound SA can be added before any policy points at
// the new outbound one. We do the same, and add a wait on the initiator
// for responders that install both directions at QM3 (strongSwan):
//
//   - responder: the pair's inbound SA goes in before QM2 leaves
//     (stageInbound); QM3, authenticated, moves the outbound traffic to the
//     pair. A quick mode that ends without QM3 (timeout, DELETE, phase 1
//     down) removes the staged SA with its SPI (quickMode.fail, abandon).
//   - initiator of a rekey: on QM2 the inbound SA goes in at once, the
//     outbound traffic stays on the old pair until the new pair's inbound
//     SA has authenticated a packet from the peer (DataPath.LastInbound:
//     a peer that sends on the pair has installed all of it) or
//     outboundGrace has passed.
//     The old pair is never deleted before the outbound moved
//     (activateBeforeDelete). The first pair of a tunnel (nothing to keep
//     sending on) is installed whole at once, as before.
//
// A data path without StagedDataPath gets Install: on QM2 (initiator) and
// on QM3 (responder), the old behaviour.

// outboundGrace is how long the initiator of a rekey keeps sending on the
// old pair when the peer sends nothing on the new one: long enough for QM3
// to reach the responder and be processed (one one-way delay plus the
// responder's work, milliseconds on a healthy path, and the scenarios' WAN
// delays are at most a few hundred), short against any phase 2 lifetime
// margin (the old pair stays valid for minutes). If QM3 is lost, our
// responder still accepts the new pair (its inbound SA is staged since
// QM2); a peer that installs at QM3 receives the retransmitted QM3 one
// retransmit timeout later at best, which no grace short enough to be
// harmless covers.
const outboundGrace = time.Second

// stagedPoll is how often the initiator looks for the peer's first packet
// on the new pair while it waits.
const stagedPoll = 50 * time.Millisecond

func (e *Engine) stagedDataPath() (StagedDataPath, bool) {
	s, ok := e.dp.(StagedDataPath)
	return s, ok
}

// stageInbound (responder, before QM2 leaves) installs the pair's inbound
// SA. It returns false if the data path refused it (QM1 refused).
func (qm *quickMode) stageInbound(o phase2Offer) bool {
	sd, ok := qm.sa.e.stagedDataPath()
	if !ok {
		return true
	}
	pair, err := qm.childPair()
	if err == nil {
		err = sd.InstallInbound(pair)
	}
	if err != nil {
		qm.refuse(isakmp.NotifyNoProposalChosen, o.p.Protocol, spiBytes(o.spi), "data path refused the inbound SA: "+err.Error())
		_ = qm.sa.e.dp.Delete(o.p.Protocol, qm.spiIn)
		return false
	}
	qm.staged, qm.pair = true, pair
	if k := qm.sa.e.klog; k != nil {
		k.ChildKeys(pair)
	}
	qm.logger().WithField("spi_in", fmt.Sprintf("%08x", qm.spiIn)).Debug("inbound SA installed before QM2; outbound follows on QM3")
	return true
}

// installPair hands a completed negotiation's pair to the data path: the
// outbound half of a staged responder pair, the inbound half of an
// initiator's pair that replaces a sending one, else the whole pair.
func (qm *quickMode) installPair(pair ChildSAPair) error {
	e := qm.sa.e
	sd, staging := e.stagedDataPath()
	switch {
	case qm.staged:
		return sd.ActivateOutbound(pair.Inbound.Protocol, pair.Inbound.SPI)
	case staging && qm.initiator && qm.sa.t.hasSendingChild():
		if err := sd.InstallInbound(pair); err != nil {
			return err
		}
		qm.outboundStaged = true
	default:
		if err := e.dp.Install(pair); err != nil {
			return err
		}
	}
	if e.klog != nil {
		e.klog.ChildKeys(pair)
	}
	return nil
}

// hasSendingChild reports whether one of the tunnel's pairs carries its
// outbound traffic (a pair that is not staged).
func (t *tunnel) hasSendingChild() bool {
	for _, c := range t.children {
		if !c.staged {
			return true
		}
	}
	return false
}

// watchStaged schedules the next look at a staged pair.
func (t *tunnel) watchStaged(c *childSA) {
	c.timers.stage = t.e.afterFunc(stagedPoll, func() { t.checkStaged(c) })
}

// checkStaged moves the outbound traffic to c once the peer has sent on it
// or the grace period is over.
func (t *tunnel) checkStaged(c *childSA) {
	if !c.staged || !t.hasChild(c) {
		return
	}
	switch {
	case !t.e.dp.LastInbound(c.pair.Inbound.Protocol, c.pair.Inbound.SPI).IsZero():
		t.activateStaged(c, "the peer sends on the new pair")
	case !timeNow().Before(c.established.Add(outboundGrace)):
		t.activateStaged(c, "grace period over without traffic from the peer on the new pair")
	default:
		t.watchStaged(c)
	}
}

// activateStaged moves the tunnel's outbound traffic to the staged pair c.
func (t *tunnel) activateStaged(c *childSA, why string) {
	if !c.staged {
		return
	}
	c.staged = false
	if c.timers.stage != nil {
		c.timers.stage.Stop()
	}
	f := t.log.WithFields(logrus.Fields{"spi_in": fmt.Sprintf("%08x", c.pair.Inbound.SPI), "spi_out": fmt.Sprintf("%08x", c.pair.Outbound.SPI),
		"why": why, "after": timeNow().Sub(c.established).Round(time.Millisecond).String()})
	sd, ok := t.e.stagedDataPath()
	if !ok {
		return
	}
	if err := sd.ActivateOutbound(c.pair.Outbound.Protocol, c.pair.Inbound.SPI); err != nil {
		f.WithError(err).Warn("cannot move outbound traffic to the new IPsec SA pair")
		t.setError("phase 2: data path refused to send on the new pair: " + err.Error())
		return
	}
	f.Info("outbound traffic moved to the new IPsec SA pair")
}

// activateBeforeDelete runs before the pair gone is deleted: if it was the
// last pair that sends, the staged pairs send from now on, so that the
// tunnel's outbound traffic never falls into the gap (make-before-break
// deletes the old pair when the new one carried traffic; a DELETE from
// the peer, an expiry or a superseded pair can come first).
func (t *tunnel) activateBeforeDelete(gone *childSA) {
	if gone.staged {
		return
	}
	for _, c := range t.children {
		if c != gone && !c.staged {
			return
		}
	}
	for _, c := range t.children {
		if c != gone && c.staged {
			t.activateStaged(c, "the pair it replaces is being deleted")
		}
	}
}
