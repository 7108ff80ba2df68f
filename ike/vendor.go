package ike

import (
	"bytes"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// The vendor-ID task: what we announce in the first message of phase 1 and
// what we learn from the peer's vendor IDs (RFC 3947 section 3.1, RFC 3706
// section 5.1).

// nattVersion is the negotiated NAT traversal dialect.
type nattVersion int

const (
	nattNone  nattVersion = iota
	nattDraft             // draft-ietf-ipsec-nat-t-ike-02/03: NAT-D type 130, encap 61443/61444
	nattRFC               // RFC 3947: NAT-D type 20, encap 3/4
)

func (v nattVersion) String() string {
	return [...]string{"none", "draft", "rfc3947"}[v]
}

// addVendorIDs appends our vendor IDs. As initiator we announce every NAT-T
// dialect we speak; as responder we echo the best one the peer sent.
func (sa *ikeSA) addVendorIDs(ps []isakmp.Payload) []isakmp.Payload {
	if sa.t == nil || sa.t.cfg.NATT {
		if sa.initiator {
			for _, v := range [][]byte{isakmp.VendorRFC3947NATT, isakmp.VendorNATTDraft03, isakmp.VendorNATTDraft02N, isakmp.VendorNATTDraft02} {
				ps = append(ps, &isakmp.VendorID{Data: v})
			}
		} else {
			switch sa.nattVersion {
			case nattRFC:
				ps = append(ps, &isakmp.VendorID{Data: isakmp.VendorRFC3947NATT})
			case nattDraft:
				ps = append(ps, &isakmp.VendorID{Data: isakmp.VendorNATTDraft02N})
			}
		}
	}
	return append(ps, &isakmp.VendorID{Data: isakmp.VendorDPD})
}

// processVendorIDs records what the peer supports. A responder picks the
// best NAT-T dialect offered; an initiator takes the one echoed.
func (sa *ikeSA) processVendorIDs(ps []isakmp.Payload) {
	best := nattNone
	for _, p := range ps {
		v, ok := p.(*isakmp.VendorID)
		if !ok {
			continue
		}
		switch {
		case bytes.Equal(v.Data, isakmp.VendorRFC3947NATT):
			best = nattRFC
		case bytes.Equal(v.Data, isakmp.VendorNATTDraft02), bytes.Equal(v.Data, isakmp.VendorNATTDraft02N), bytes.Equal(v.Data, isakmp.VendorNATTDraft03):
			if best == nattNone {
				best = nattDraft
			}
		case bytes.Equal(v.Data, isakmp.VendorDPD):
			sa.peerDPD = true
		default:
			sa.logger().WithField("vendor_id", isakmp.Describe(v)).Debug("peer vendor ID")
		}
	}
	if sa.t != nil && !sa.t.cfg.NATT {
		best = nattNone
	}
	sa.nattVersion = best
}
