package ike

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/dh"
	"github.com/vpnlab/vpnlab/ike/ikev2/exchange"
	"github.com/vpnlab/vpnlab/ike/ikev2/keymat"
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
	"github.com/vpnlab/vpnlab/ike/status"
)

// The IKEv2 SA (RFC 7296): its state, SPIs, keys, the SK payload's seal
// and open, and the message ID windows of both directions. The engine
// keeps IKEv2 SAs in their own map, by our own SPI (SPIi when we are the
// original initiator, SPIr when we are the responder), beside the IKEv1
// SAs (by initiator cookie); the version nibble of the header decides
// which map a datagram is looked up in (dispatch.go).

// v2State is where an IKEv2 SA stands.
type v2State int

const (
	v2InitSent    v2State = iota // initiator: IKE_SA_INIT request sent
	v2AuthSent                   // initiator: IKE_AUTH request sent
	v2InitReplied                // responder: IKE_SA_INIT answered, waiting for IKE_AUTH
	v2Established
	v2Deleted
)

func (s v2State) String() string {
	return [...]string{"IKE_SA_INIT_SENT", "IKE_AUTH_SENT", "IKE_SA_INIT_REPLIED", "ESTABLISHED", "DELETED"}[s]
}

// ikev2SA is one IKEv2 SA, owned by the engine loop.
type ikev2SA struct {
	e         *Engine
	t         *tunnel
	initiator bool // we are the original initiator (RFC 7296 section 2.2)
	state     v2State
	spiI      [8]byte
	spiR      [8]byte
	local     netip.AddrPort // current local socket (500, or 4500 after the float)
	remote    netip.AddrPort
	created   time.Time
	halfOpen  bool // responder: counted in Engine.halfOpen (halfopen.go)
	// halfOpenPeer: the address the half-open count is held for.
	halfOpenPeer netip.Addr

	// IKE_SA_INIT.
	offer    *wire.SA         // initiator: the SA payload we offered
	initReq  []wire.Payload   // initiator: the request's payloads (cookie and KE retries resend them)
	keRetry  exchange.KERetry // initiator: INVALID_KE_PAYLOAD retries
	cookie   exchange.CookieRetry
	chosen   *exchange.Choice
	proposal Phase1Proposal // the chosen transforms in the policy's names (status)
	group    wire.DHGroup
	dhKey    dh.Key
	ni, nr   []byte
	// msgI and msgR are the IKE_SA_INIT request and response as sent: what
	// IKE_AUTH's AUTH payloads sign (section 2.15).
	msgI, msgR []byte
	// initInHash: responder, the digest of the IKE_SA_INIT request, to
	// answer its retransmission from the cache.
	initInHash [32]byte
	initResp   []byte // responder: the cached IKE_SA_INIT response

	// NAT traversal (section 2.23).
	localBehindNAT  bool
	remoteBehindNAT bool
	floated         bool
	natd            bool // both sides sent NAT detection notifies
	peerFragments   bool // both sides sent IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383)

	// Keys.
	keys     keymat.IKEKeys
	prf      keymat.PRF
	sealer   *wire.Suite // messages we send (SK_ei/SK_ai, or SK_er/SK_ar)
	opener   *wire.Suite // messages we receive
	lifetime time.Duration

	// Message IDs (sections 2.1-2.3): requests we send, requests we answer.
	reqs  exchange.Requests
	resps exchange.Responses
	out   v2Outbox // the outstanding request (ikev2_retransmit.go)

	// Informational messages sent, and the numbers of the last few, for
	// the impairments (impair.go).
	infoSent   int
	infoRecent [v2InfoRecent]v2InfoNum

	reasm *v2Reassembly // the fragmented message being reassembled (ikev2_fragment.go)

	// The first child SA, negotiated in IKE_AUTH (ikev2_child.go).
	child *v2Child

	established time.Time
	expires     time.Time
	timers      struct{ halfOpen, rekey, expire *time.Timer }
}

func (sa *ikev2SA) logger() logrus.FieldLogger {
	f := logrus.Fields{"spi_i": hex.EncodeToString(sa.spiI[:]), "spi_r": hex.EncodeToString(sa.spiR[:]),
		"peer": sa.remote.String(), "ike_version": "ikev2"}
	if sa.t != nil {
		return sa.t.log.WithFields(f)
	}
	return sa.e.log.WithFields(f)
}

func (sa *ikev2SA) role() string {
	if sa.initiator {
		return "initiator"
	}
	return "responder"
}

// ourSPI is the key of the SA in Engine.sas2.
func (sa *ikev2SA) ourSPI() [8]byte {
	if sa.initiator {
		return sa.spiI
	}
	return sa.spiR
}

// v2InitKey names a responder's SA by what an IKE_SA_INIT request carries
// before the responder's SPI exists: the peer address and SPIi.
type v2InitKey struct {
	peer netip.Addr
	spiI [8]byte
}

// addSA2 registers an IKEv2 SA with the engine and its tunnel.
func (e *Engine) addSA2(sa *ikev2SA) {
	if e.sas2 == nil {
		e.sas2 = map[[8]byte]*ikev2SA{}
		e.v2init = map[v2InitKey]*ikev2SA{}
	}
	e.sas2[sa.ourSPI()] = sa
	if !sa.initiator {
		e.v2init[v2InitKey{sa.remote.Addr(), sa.spiI}] = sa
	}
	if sa.t != nil {
		sa.t.v2SAs = append(sa.t.v2SAs, sa)
	}
}

// removeSA2 forgets an IKEv2 SA.
func (e *Engine) removeSA2(sa *ikev2SA) {
	if e.sas2[sa.ourSPI()] == sa {
		delete(e.sas2, sa.ourSPI())
	}
	k := v2InitKey{sa.remote.Addr(), sa.spiI}
	if e.v2init[k] == sa {
		delete(e.v2init, k)
	}
	if t := sa.t; t != nil {
		for i, x := range t.v2SAs {
			if x == sa {
				t.v2SAs = append(t.v2SAs[:i], t.v2SAs[i+1:]...)
				break
			}
		}
	}
}

// newSPI returns a random IKE SPI that no IKEv2 SA of ours uses.
func (e *Engine) newSPI() [8]byte {
	for {
		s := randomCookie()
		if _, used := e.sas2[s]; !used && s != ([8]byte{}) {
			return s
		}
	}
}

// header returns the header of a message of ours on this SA.
func (sa *ikev2SA) header(ex wire.ExchangeType, mid uint32, response bool) wire.Header {
	h := wire.Header{SPIi: sa.spiI, SPIr: sa.spiR, Version: wire.Version, Exchange: ex, MessageID: mid}
	if sa.initiator {
		h.Flags |= wire.FlagInitiator
	}
	if response {
		h.Flags |= wire.FlagResponse
	}
	return h
}

// deriveKeys computes SKEYSEED and the seven keys from the DH shared
// secret and both nonces (sections 2.14), and the SK suites of both
// directions.
func (sa *ikev2SA) deriveKeys(gir []byte) error {
	suite := sa.chosen.Suite()
	sa.prf = suite.PRF
	skeyseed, err := keymat.SKEYSEED(suite.PRF, sa.ni, sa.nr, gir)
	if err != nil {
		return err
	}
	if sa.keys, err = keymat.DeriveIKE(suite, skeyseed, sa.ni, sa.nr, sa.spiI[:], sa.spiR[:]); err != nil {
		return err
	}
	encr, integ := wire.EncrID(suite.Encr.ID), wire.IntegID(suite.Integ.ID)
	ki := wire.Keys{Encr: encr, Integ: integ, EncrKey: sa.keys.Ei, IntegKey: sa.keys.Ai}
	kr := wire.Keys{Encr: encr, Integ: integ, EncrKey: sa.keys.Er, IntegKey: sa.keys.Ar}
	if !sa.initiator {
		ki, kr = kr, ki
	}
	if sa.sealer, err = wire.NewSuite(ki); err != nil {
		return err
	}
	sa.opener, err = wire.NewSuite(kr)
	return err
}

// seal encrypts inner into one message of ours.
func (sa *ikev2SA) seal(ex wire.ExchangeType, mid uint32, response bool, inner []wire.Payload) ([]byte, error) {
	return sa.sealImpaired(ex, mid, response, sa.impairV2Payloads(ex, response, inner))
}

// sealImpaired is seal of payloads the impairments were applied to.
func (sa *ikev2SA) sealImpaired(ex wire.ExchangeType, mid uint32, response bool, inner []wire.Payload) ([]byte, error) {
	if sa.sealer == nil {
		return nil, errors.New("no keys yet")
	}
	return sa.sealer.Seal(sa.header(ex, mid, response), inner, nil)
}

// open verifies and decrypts a message of the peer on this SA and
// decodes its inner payloads. An ICV that does not verify is
// wire.ErrAuthentication.
func (sa *ikev2SA) open(b []byte) ([]wire.Payload, error) {
	if sa.opener == nil {
		return nil, errors.New("no keys yet")
	}
	o, err := sa.opener.Open(b)
	if err != nil {
		return nil, err
	}
	if o.Total != 0 {
		return nil, errors.New("an IKE fragment (SKF): fragmented messages are not reassembled")
	}
	return o.Payloads()
}

// sendV2 writes one of our messages to the peer and counts it.
func (sa *ikev2SA) sendV2(msg []byte, what string) {
	if sa.t != nil {
		countV2Sent(&sa.t.counters, msg) // counters.go
	}
	if err := sa.e.send(sa.local, sa.remote, msg); err != nil {
		sa.logger().WithError(err).WithField("message", what).Warn("send failed")
	}
}

// keyLog hands the IKE SA's keys to a key logger that takes IKEv2 keys.
func (sa *ikev2SA) keyLog() {
	kl, ok := sa.e.klog.(status.IKEv2KeyLogger)
	if !ok {
		return
	}
	kl.IKEv2Keys(status.IKEv2Keys{
		SPIi: sa.spiI, SPIr: sa.spiR,
		EncrID: sa.chosen.Encr.ID, EncrKeyBits: sa.chosen.Encr.KeyBits, IntegID: sa.chosen.Integ.ID,
		SKei: sa.keys.Ei, SKer: sa.keys.Er, SKai: sa.keys.Ai, SKar: sa.keys.Ar,
	})
}

// delete removes the IKEv2 SA and, since the children of an IKEv2 SA do
// not outlive it (section 1.4.1), the tunnel's child SAs it created.
func (sa *ikev2SA) delete(reason string, tellPeer bool) {
	if sa.state == v2Deleted {
		return
	}
	wasUp := sa.state == v2Established
	if tellPeer && wasUp {
		sa.notifyPeerDeleted(reason)
	}
	sa.state = v2Deleted
	sa.out.stop()
	sa.failQueued("IKE SA deleted: " + reason) // ikev2_queue.go
	for _, tm := range []*time.Timer{sa.timers.halfOpen, sa.timers.rekey, sa.timers.expire} {
		if tm != nil {
			tm.Stop()
		}
	}
	sa.e.releaseHalfOpenV2(sa)
	sa.e.removeSA2(sa)
	sa.abandonChild("IKE SA down: " + reason)
	t := sa.t
	if t == nil {
		return
	}
	for _, c := range append([]*childSA(nil), t.children...) {
		if c.ikev2 == sa {
			t.deleteChild(c, "IKE SA deleted: "+reason, false)
		}
	}
	if t.v2 != sa {
		return
	}
	t.v2 = nil
	for _, other := range t.v2SAs {
		if other.state == v2Established {
			t.v2 = other
			return
		}
	}
	t.setPhase1State("Down")
	t.stopKeepalive()
	f := t.log.WithFields(logrus.Fields{"reason": reason, "ike_version": "ikev2"})
	if wasUp {
		f.Info("IKE SA down")
	} else {
		f.Warn("IKE SA negotiation failed")
	}
	sa.e.emit(Event{Tunnel: t.cfg.Name, Type: "phase1-down", Detail: map[string]string{"reason": reason, "ike_version": "ikev2"}})
	if t.wantUp {
		t.scheduleRetry(sa.e, wasUp) // retrybackoff.go
	}
}

// fail ends a negotiation that did not complete, with the reason in the
// tunnel's last error.
func (sa *ikev2SA) fail(reason string) {
	if sa.t != nil {
		sa.t.setError(reason)
		switch sa.state {
		case v2InitSent:
			sa.t.counters.Exchanges.IKESAInit.Failed++
		case v2AuthSent, v2InitReplied:
			sa.t.counters.Exchanges.IKEAuth.Failed++
		}
	}
	sa.delete(reason, false)
}

// notifyPeerDeleted sends the IKE SA's DELETE (an INFORMATIONAL request,
// section 1.4.1).
func (sa *ikev2SA) notifyPeerDeleted(reason string) {
	sa.sendDeleteIKENow(reason) // ikev2_informational.go
}

// v2Proposal names a chosen IKE SA proposal in the policy's words.
func v2Proposal(c *exchange.Choice) Phase1Proposal {
	return Phase1Proposal{EncKeyBits: c.Encr.KeyBits, Hash: c.PRF.Hash, DHGroup: uint16(c.DH), GCM: c.Encr.AEAD}
}

func (sa *ikev2SA) String() string {
	return fmt.Sprintf("IKEv2 SA %x/%x", sa.spiI, sa.spiR)
}

// sealRequest seals a request of ours into its datagrams (fragments if
// it is too large: ikev2_fragment.go).
func (sa *ikev2SA) sealRequest(ex wire.ExchangeType, mid uint32, inner []wire.Payload) ([][]byte, error) {
	return sa.sealMessage(ex, mid, false, inner)
}
