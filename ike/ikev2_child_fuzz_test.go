package ike

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/ikev2/exchange"
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
	"github.com/vpnlab/vpnlab/ike/sock"
)

// FuzzIKEv2Responder feeds decoded payload chains, as an authenticated
// peer could send them inside SK, to the responder of CREATE_CHILD_SA and
// INFORMATIONAL on an established IKE SA (the vgw of a running pair): no
// panic, every CREATE_CHILD_SA request answered, and the state a peer can
// create stays bounded (child SAs, IKE SAs). Input: one byte choosing the
// exchange, one byte the first payload type, then the payload chain.
func FuzzIKEv2Responder(f *testing.F) {
	ts := []wire.Payload{&wire.TS{Selectors: exchange.AWSSelectors()}, &wire.TS{Responder: true, Selectors: exchange.AWSSelectors()}}
	seed := func(ex byte, ps ...wire.Payload) {
		first, b, err := wire.AppendPayloads(nil, ps)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append([]byte{ex, byte(first)}, b...))
	}
	nonce := &wire.Nonce{Data: bytes.Repeat([]byte{7}, 32)}
	child := childOffer(awsVGWPhase2()[:1], 0x1234, true)
	ikeSA, _ := ikeOffer(awsVGWPhase1()[:1])
	ikeSA.Proposals[0].SPI = bytes.Repeat([]byte{1}, 8)
	seed(0, append([]wire.Payload{child, nonce}, ts...)...)
	seed(0, append([]wire.Payload{&wire.Notify{Protocol: wire.ProtoESP, SPI: []byte{0, 0, 0x12, 0x34}, NotifyType: wire.NotifyRekeySA}, child, nonce}, ts...)...)
	seed(0, ikeSA, nonce, &wire.KE{Group: 2, Data: make([]byte, 128)})
	seed(1, &wire.Delete{Protocol: wire.ProtoESP, SPISize: 4, SPIs: [][]byte{{0, 0, 1, 0}}})
	seed(1, &wire.Delete{Protocol: wire.ProtoIKE})
	seed(1)

	vgw := fuzzV2Pair(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		ps, err := wire.DecodePayloads(wire.PayloadType(data[1]), data[2:], 0)
		if err != nil {
			return
		}
		onLoop(vgw, func(tn *tunnel) {
			sa := tn.v2
			if sa == nil || sa.state != v2Established {
				return
			}
			if data[0]%2 == 1 {
				sa.answerInformational(ps) // a DELETE of the IKE SA is not applied: the SA serves the next input
				return
			}
			kind, err := v2ClassifyCreateChild(ps)
			var out []wire.Payload
			switch {
			case err != nil:
				out = sa.refusalV2(err, "fuzz")
			case kind == v2RekeyIKE:
				out = sa.answerIKERekey(ps)
			default:
				out = sa.answerChildV2(ps, kind)
			}
			if len(out) == 0 {
				t.Error("a CREATE_CHILD_SA request without an answer")
			}
			if len(tn.children) > v2MaxChildren || len(tn.v2SAs) > v2MaxIKESAs+1 {
				t.Errorf("state unbounded: %d child SAs, %d IKE SAs", len(tn.children), len(tn.v2SAs))
			}
		})
		checkNoPanics(t, "vgw", vgw.e, false)
	})
}

// fuzzV2Pair brings up an IKEv2 cgw/vgw pair that lives as long as the
// fuzz target (newV2Pair's, on the F) and returns the vgw.
func fuzzV2Pair(f *testing.F) *gw {
	ct, vt := v2Tunnels()
	network := sock.NewNetwork()
	vc, cc := Config{Tunnels: []TunnelConfig{vt}}, Config{Tunnels: []TunnelConfig{ct}}
	fastRetransmit(&vc)
	fastRetransmit(&cc)
	vgw := startGW(f, "vgw", vc, WithBinder(network))
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		c, err := network.Open(netip.AddrPortFrom(vt.LocalAddr, DefaultPorts.NATT))
		if err != nil {
			break
		}
		c.Close()
	}
	cgw := startGW(f, "cgw", cc, WithBinder(network))
	cgw.waitEvent(f, "phase2-up", 10*time.Second)
	vgw.waitEvent(f, "phase2-up", 10*time.Second)
	return vgw
}
