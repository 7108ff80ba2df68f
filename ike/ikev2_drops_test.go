package ike

import (
	"net/netip"
	"testing"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// TestIKEv2DropReasons: every counted drop of an IKEv2 message that no
// other test asserts, on a vgw with an established IKE SA (the harness's
// customer side seals the messages with the real keys): the named drop
// counter moves by one, nothing is sent back, and the IKE SA stays.
func TestIKEv2DropReasons(t *testing.T) {
	for _, c := range []struct {
		name, reason string
		msg          func(sa *ikev2SA) []byte
	}{
		{"header-truncated", dropV2Malformed, func(sa *ikev2SA) []byte {
			b := sealed(t, sa, sa.header(wire.ExchangeInformational, 2, false), nil)
			return b[:20] // the version byte is there, the header is not
		}},
		{"zero-spi-i", dropV2Malformed, func(sa *ikev2SA) []byte {
			h := sa.header(wire.ExchangeInformational, 2, false)
			h.SPIi = [8]byte{}
			return sealed(t, sa, h, nil)
		}},
		{"unknown-spis", dropV2UnknownSPI, func(sa *ikev2SA) []byte {
			h := sa.header(wire.ExchangeInformational, 2, false)
			h.SPIr[0] ^= 0xff
			return sealed(t, sa, h, nil)
		}},
		{"integrity", dropV2Integrity, func(sa *ikev2SA) []byte {
			b := sealed(t, sa, sa.header(wire.ExchangeInformational, 2, false), nil)
			b[len(b)-1] ^= 1 // the ICV
			return b
		}},
		{"message-id-ahead", dropV2MessageID, func(sa *ikev2SA) []byte {
			return sealed(t, sa, sa.header(wire.ExchangeInformational, 9, false), nil)
		}},
		{"unknown-exchange", dropV2Unhandled, func(sa *ikev2SA) []byte {
			return sealed(t, sa, sa.header(wire.ExchangeType(50), 2, false), nil)
		}},
		{"unasked-response", dropV2WrongDirection, func(sa *ikev2SA) []byte {
			// A "response" to an IKE_AUTH the vgw (the responder) never sent.
			return sealed(t, sa, sa.header(wire.ExchangeIKEAuth, 1, true), nil)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			timers := &recordedTimers{}
			defer timers.stopAll()
			h, sa := v2AuthHarness(t, timers)
			s := h.vgw.sockets[netip.AddrPortFrom(harnessV, DefaultPorts.IKE)]
			from := netip.AddrPortFrom(harnessC, DefaultPorts.IKE)
			inner, err := sa.authRequestPayloads()
			if err != nil {
				t.Fatal(err)
			}
			h.vgw.handleDatagram(s, from, sealed(t, sa, sa.header(wire.ExchangeIKEAuth, 1, false), inner))
			vsa := h.vgw.byName["tunnel1"].v2
			if vsa == nil || vsa.state != v2Established {
				t.Fatal("the vgw did not establish the IKE SA")
			}
			h.wire.pkts = nil
			before := h.vgw.counters.Drops[c.reason]
			h.vgw.handleDatagram(s, from, c.msg(sa))
			if got := h.vgw.counters.Drops[c.reason] - before; got != 1 {
				t.Errorf("drop %q counted %d times, want 1 (drops: %v)", c.reason, got, h.vgw.counters.Drops)
			}
			if len(h.wire.pkts) != 0 {
				t.Errorf("the vgw answered a dropped message (%d datagrams)", len(h.wire.pkts))
			}
			if h.vgw.byName["tunnel1"].v2 != vsa || vsa.state != v2Established {
				t.Error("the dropped message changed the IKE SA")
			}
		})
	}
}

// sealed is a message of the harness's customer side, protected with its
// keys (an empty SK payload when inner is nil).
func sealed(t *testing.T, sa *ikev2SA, h wire.Header, inner []wire.Payload) []byte {
	t.Helper()
	b, err := sa.sealer.Seal(h, inner, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
