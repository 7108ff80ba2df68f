package exchange

import (
	"crypto/rand"
	"net/netip"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/dh"
	"github.com/vpnlab/vpnlab/ike/ikev2/keymat"
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// charonAuth answers charon's accepted IKE_SA_INIT request (req, as the
// bytes reqB) with Select's reply, our KE and nonce, derives the IKE SA
// keys, opens charon's IKE_AUTH request and checks: its AUTH verifies with
// the PSK (so our reply and keys are what charon used), Select takes its
// ESP proposal with the DH transforms ignored (section 1.2), and Narrow
// narrows its TSi 10.1.0.0/16 and TSr 0.0.0.0/0 against AWS's 0.0.0.0/0
// and against a narrower policy; charon's retransmission of IKE_AUTH is
// recognised by Responses.
func charonAuth(t *testing.T, sock *peerSocket, seen map[string]bool, req *wire.Message, reqB []byte, from netip.AddrPort) {
	t.Helper()
	ke := findKE(req.Payloads)
	ch, err := Select(findSA(req.Payloads), AWSIKE(), Options{Rule: LowestValue, KEGroup: ke.Group})
	if err != nil {
		t.Fatal(err)
	}
	g, _ := dh.ByID(uint16(ch.DH))
	key, err := g.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	gir, err := key.SharedSecret(ke.Data)
	if err != nil {
		t.Fatalf("charon's KE: %v", err)
	}
	var spir [8]byte
	nr := make([]byte, 32)
	_, _ = rand.Read(spir[:])
	_, _ = rand.Read(nr)
	var ni []byte
	for _, p := range req.Payloads {
		if n, ok := p.(*wire.Nonce); ok {
			ni = n.Data
		}
	}
	var responses Responses // the peer's requests from here on
	if v, _, _ := responses.Receive(0, reqB); v != Process {
		t.Fatalf("IKE_SA_INIT: %s", v)
	}
	resp := &wire.Message{Header: wire.Header{SPIi: req.Header.SPIi, SPIr: spir, Exchange: wire.ExchangeIKESAInit, Flags: wire.FlagResponse},
		Payloads: []wire.Payload{ch.Reply(nil), &wire.KE{Group: ch.DH, Data: key.Public()}, &wire.Nonce{Data: nr}}}
	rb, err := resp.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := responses.Answered(0, reqB, [][]byte{rb}); err != nil {
		t.Fatal(err)
	}
	sock.answers[string(reqB)] = rb
	if _, err := sock.conn.WriteToUDPAddrPort(rb, from); err != nil {
		t.Fatal(err)
	}

	// charon's IKE_AUTH request, message ID 1
	authB := sock.nextAuth(seen, req.Header.SPIi, spir)
	if v, _, _ := responses.Receive(1, authB); v != Process {
		t.Fatalf("IKE_AUTH request: %s", v)
	}
	seed, err := keymat.SKEYSEED(ch.PRF, ni, nr, gir)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := keymat.DeriveIKE(ch.Suite(), seed, ni, nr, req.Header.SPIi[:], spir[:])
	if err != nil {
		t.Fatal(err)
	}
	suite, err := wire.NewSuite(wire.Keys{Encr: wire.EncrID(ch.Encr.ID), Integ: wire.IntegID(ch.Integ.ID), EncrKey: keys.Ei, IntegKey: keys.Ai})
	if err != nil {
		t.Fatal(err)
	}
	opened, err := suite.Open(authB)
	if err != nil {
		t.Fatalf("charon's IKE_AUTH does not open with our keys: %v", err)
	}
	ps, err := opened.Payloads()
	if err != nil {
		t.Fatal(err)
	}
	checkCharonAuth(t, ch, keys, reqB, nr, ps)

	// Without our answer charon retransmits IKE_AUTH, byte for byte the
	// same: Responses answers it from the cache; other bytes under the
	// same message ID are dropped.
	if err := responses.Answered(1, authB, [][]byte{[]byte("cached IKE_AUTH response")}); err != nil {
		t.Fatal(err)
	}
	again := sock.nextAuthAgain(20 * time.Second)
	v, cached, why := responses.Receive(1, again)
	if v != Retransmit || len(cached) != 1 || string(cached[0]) != "cached IKE_AUTH response" {
		t.Errorf("charon's IKE_AUTH retransmission: %s (%s)", v, why)
	}
	forged := append([]byte(nil), again...)
	forged[len(forged)-1] ^= 1
	if v, _, _ := responses.Receive(1, forged); v != Drop {
		t.Errorf("altered retransmission: %s", v)
	}
}

// nextAuthAgain returns the next IKE_AUTH datagram (a late IKE_SA_INIT
// retransmission is skipped).
func (p *peerSocket) nextAuthAgain(wait time.Duration) []byte {
	p.t.Helper()
	buf := make([]byte, 65535)
	_ = p.conn.SetReadDeadline(time.Now().Add(wait))
	for {
		n, _, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			p.t.Fatalf("no IKE_AUTH retransmission from charon: %v", err)
		}
		if h, err := wire.DecodeHeader(buf[:n]); err == nil && h.Exchange == wire.ExchangeIKEAuth {
			return append([]byte(nil), buf[:n]...)
		}
	}
}

// nextAuth reads charon's IKE_AUTH request (retransmissions of the
// IKE_SA_INIT request get our cached answer from next's logic).
func (p *peerSocket) nextAuth(seen map[string]bool, spii, spir [8]byte) []byte {
	p.t.Helper()
	buf := make([]byte, 65535)
	for {
		_ = p.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, from, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			p.t.Fatalf("no IKE_AUTH from charon: %v", err)
		}
		b := append([]byte(nil), buf[:n]...)
		if seen[string(b)] {
			if a := p.answers[string(b)]; a != nil {
				_, _ = p.conn.WriteToUDPAddrPort(a, from)
			}
			continue
		}
		h, err := wire.DecodeHeader(b)
		if err != nil {
			p.t.Fatal(err)
		}
		if h.Exchange == wire.ExchangeIKEAuth && h.SPIi == spii && h.SPIr == spir && h.MessageID == 1 && !h.Response() {
			return b
		}
		p.t.Fatalf("expected IKE_AUTH, got %+v", h)
	}
}

func checkCharonAuth(t *testing.T, ch *Choice, keys keymat.IKEKeys, initB, nr []byte, ps []wire.Payload) {
	t.Helper()
	var id *wire.ID
	var auth *wire.Auth
	var child *wire.SA
	var tsi, tsr *wire.TS
	for _, p := range ps {
		switch p := p.(type) {
		case *wire.ID:
			if !p.Responder {
				id = p
			}
		case *wire.Auth:
			auth = p
		case *wire.SA:
			child = p
		case *wire.TS:
			if p.Responder {
				tsr = p
			} else {
				tsi = p
			}
		}
	}
	if id == nil || auth == nil || child == nil || tsi == nil || tsr == nil {
		t.Fatalf("IKE_AUTH without IDi, AUTH, SA, TSi or TSr: %v", ps)
	}
	idBody := append([]byte{byte(id.IDType), 0, 0, 0}, id.Data...)
	if auth.Method != wire.AuthPSK || !keymat.VerifyPSKAuth(ch.PRF, auth.Data, []byte(charonPSK), initB, nr, keys.Pi, idBody) {
		t.Error("charon's PSK AUTH does not verify")
	}
	cc, err := Select(child, AWSChild(), Options{IgnoreDH: true})
	if err != nil || cc.String() != "ENCR_AES_CBC-128/AUTH_HMAC_SHA2_256_128/NO_ESN" || cc.DH != wire.DHNone || len(cc.PeerSPI) != 4 {
		t.Errorf("charon's child SA offer: %v %v", cc, err)
	}
	n, err := Narrow(tsi, tsr, AWSSelectors(), AWSSelectors())
	if err != nil || strs(n.TSi) != "10.1.0.0-10.1.255.255 proto 0 ports 0-65535" ||
		strs(n.TSr) != "0.0.0.0-255.255.255.255 proto 0 ports 0-65535" || n.Changed {
		t.Errorf("AWS narrowing of charon's TSi %s TSr %s: %v %v", strs(tsi), strs(tsr), n, err)
	}
	n, err = Narrow(tsi, tsr, []wire.Selector{pfx("10.1.2.0/24")}, []wire.Selector{pfx("192.168.0.0/16")})
	if err != nil || strs(n.TSi) != "10.1.2.0-10.1.2.255 proto 0 ports 0-65535" ||
		strs(n.TSr) != "192.168.0.0-192.168.255.255 proto 0 ports 0-65535" || !n.Changed {
		t.Errorf("narrowing of charon's selectors: %v %v", n, err)
	} else if err := CheckNarrowed(tsi, tsr, n.TSi, n.TSr); err != nil {
		t.Error(err)
	}
	if _, err := Narrow(tsi, tsr, []wire.Selector{pfx("10.2.0.0/16")}, AWSSelectors()); notifyOf(t, err) != wire.NotifyTSUnacceptable {
		t.Errorf("disjoint policy: %v", err)
	}
	t.Logf("charon's IKE_AUTH: AUTH verified, child %s, TSi %s, TSr %s", cc, strs(tsi), strs(tsr))
}
