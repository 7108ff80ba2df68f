package ike

import (
	"errors"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// IKE fragmentation (RFC 7383): when both sides announced
// IKEV2_FRAGMENTATION_SUPPORTED in IKE_SA_INIT, an encrypted message that
// would make an IP datagram larger than the fragment size is sent as SKF
// fragments (wire.Suite.Split); fragments we receive are verified one by
// one and reassembled (wire.Reassembler, bounded) before the exchange sees
// the message. One message is reassembled at a time per IKE SA; a
// retransmitted fragmented request is recognised by its first fragment
// (exchange.Responses gets fragment 1's bytes).

// DefaultIKEv2FragmentSize is the largest IP datagram an IKEv2 message is
// sent in before it is fragmented: 1280, the IPv6 minimum MTU, which RFC
// 7383 section 2.5.1 suggests and strongSwan uses by default.
const DefaultIKEv2FragmentSize = 1280

// WithIKEv2FragmentSize sets the largest IP datagram (IP and UDP headers
// included) of an IKEv2 message before IKE fragmentation (RFC 7383);
// values under 576 are raised to 576.
func WithIKEv2FragmentSize(n int) Option {
	return func(e *Engine) { e.fragmentSize = max(n, 576) }
}

// v2Reassembly is the message being reassembled.
type v2Reassembly struct {
	mid      uint32
	response bool
	r        wire.Reassembler
	first    []byte // fragment 1 as received
}

// maxMessage is the largest IKE message (without IP and UDP headers and
// the non-ESP marker) that goes unfragmented.
func (sa *ikev2SA) maxMessage() int {
	size := sa.e.fragmentSize
	if size == 0 {
		size = DefaultIKEv2FragmentSize
	}
	n := size - 20 - 8 // IPv4 and UDP headers
	if sa.local.Addr().Is6() {
		n -= 20
	}
	if sa.floated {
		n -= 4
	}
	return n
}

// sealMessage seals a message of ours into its datagrams: one SK message,
// or SKF fragments when it is too large and the peer takes fragments.
func (sa *ikev2SA) sealMessage(ex wire.ExchangeType, mid uint32, response bool, inner []wire.Payload) ([][]byte, error) {
	inner = sa.impairV2Payloads(ex, response, inner) // impair.go
	msg, err := sa.sealImpaired(ex, mid, response, inner)
	if err != nil {
		return nil, err
	}
	if !sa.peerFragments || len(msg) <= sa.maxMessage() {
		return [][]byte{msg}, nil
	}
	frags, err := sa.sealer.Split(sa.header(ex, mid, response), inner, sa.maxMessage())
	if err != nil {
		return nil, err
	}
	sa.logger().WithFields(map[string]any{"exchange": ex.String(), "bytes": len(msg), "fragments": len(frags)}).Debug("message fragmented (RFC 7383)")
	return frags, nil
}

// errFragmentIgnored is a fragment that is dropped without ending
// anything (a stale fragmentation, a fragment of another message).
var errFragmentIgnored = errors.New("IKE fragment dropped")

// openFragment verifies and adds one SKF fragment. done reports a
// complete message: ps is its payloads and first the bytes of fragment 1.
func (sa *ikev2SA) openFragment(h wire.Header, b []byte) (ps []wire.Payload, first []byte, done bool, err error) {
	if sa.opener == nil || !sa.peerFragments {
		return nil, nil, false, errFragmentIgnored
	}
	o, err := sa.opener.Open(b)
	if err != nil {
		return nil, nil, false, err
	}
	if o.Total == 0 {
		ps, err = o.Payloads()
		return ps, b, true, err
	}
	ra := sa.reasm
	if ra == nil || ra.mid != h.MessageID || ra.response != h.Response() {
		ra = &v2Reassembly{mid: h.MessageID, response: h.Response()}
		sa.reasm = ra
	}
	complete, err := ra.r.Add(o)
	if err != nil {
		sa.logger().WithError(err).Debug("IKE fragment dropped")
		return nil, nil, false, errFragmentIgnored
	}
	if o.Number == 1 {
		ra.first = append([]byte(nil), b...)
	}
	if !complete {
		return nil, nil, false, nil
	}
	sa.reasm = nil
	ps, err = ra.r.Payloads()
	return ps, ra.first, true, err
}
