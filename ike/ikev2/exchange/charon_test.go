package exchange

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
	"github.com/vpnlab/vpnlab/internal/netlab"
	"github.com/vpnlab/vpnlab/internal/strongswan"
)

// peerSocket is a UDP socket in a namespace, standing in for a responder.
type peerSocket struct {
	t       *testing.T
	conn    *net.UDPConn
	answers map[string][]byte // request -> our reply
}

func listenIn(t *testing.T, ns *netlab.NS, addr string) *peerSocket {
	t.Helper()
	var c *net.UDPConn
	err := ns.Do(func() (err error) {
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &peerSocket{t, c, map[string][]byte{}}
}

// next returns the next IKE_SA_INIT request and its sender. A
// retransmission of a request already answered gets the same answer again
// (a stateless responder computes the same cookie or INVALID_KE_PAYLOAD):
// charon may retransmit when our answer raced its own send.
func (p *peerSocket) next(seen map[string]bool) (*wire.Message, []byte, netip.AddrPort) {
	p.t.Helper()
	buf := make([]byte, 65535)
	for {
		_ = p.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, from, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			p.t.Fatalf("no IKE_SA_INIT from charon: %v", err)
		}
		b := append([]byte(nil), buf[:n]...)
		if seen[string(b)] {
			if a := p.answers[string(b)]; a != nil {
				_, _ = p.conn.WriteToUDPAddrPort(a, from)
			}
			continue
		}
		seen[string(b)] = true
		m, err := wire.Decode(b)
		if err != nil {
			p.t.Fatalf("charon's message does not decode: %v", err)
		}
		if m.Header.Exchange != wire.ExchangeIKESAInit || m.Header.Response() || !m.Header.Initiator() || m.Header.MessageID != 0 {
			p.t.Fatalf("not an IKE_SA_INIT request: %+v", m.Header)
		}
		return m, b, from
	}
}

// reply answers req (reqBytes as received) with one notify, as a
// responder that keeps no state does (SPIr zero).
func (p *peerSocket) reply(req *wire.Message, reqBytes []byte, to netip.AddrPort, n *wire.Notify) {
	p.t.Helper()
	m := &wire.Message{Header: wire.Header{SPIi: req.Header.SPIi, Exchange: wire.ExchangeIKESAInit, Flags: wire.FlagResponse},
		Payloads: []wire.Payload{n}}
	b, err := m.Encode()
	if err != nil {
		p.t.Fatal(err)
	}
	p.answers[string(reqBytes)] = b
	if _, err := p.conn.WriteToUDPAddrPort(b, to); err != nil {
		p.t.Fatal(err)
	}
}

func encodePayloads(t *testing.T, ps []wire.Payload) []byte {
	t.Helper()
	_, b, err := wire.AppendPayloads(nil, ps)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const charonPSK = "exchange-charon-test"

// startCharon starts charon in ns and loads conn; it is stopped at the
// end of the test, and its IKE log lines are shown when the test failed.
func startCharon(ctx context.Context, t *testing.T, ns *netlab.NS, opt strongswan.Options, conn strongswan.Conn) *strongswan.Charon {
	t.Helper()
	charon, err := strongswan.Start(ctx, ns, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(charon.LogPath())
			for _, l := range strings.Split(string(b), "\n") {
				if strings.Contains(l, "[IKE]") || strings.Contains(l, "[ENC]") || strings.Contains(l, "received packet") {
					t.Log(l)
				}
			}
		}
		_ = charon.Stop()
	})
	if err := charon.Load(ctx, strongswan.Config{Connections: []strongswan.Conn{conn}}); err != nil {
		t.Fatal(err)
	}
	return charon
}

// TestCharonInitiator runs strongSwan's charon as an IKEv2 initiator
// against a bare UDP socket and answers it with this package's decisions:
//  1. its first IKE_SA_INIT offers MODP_1536 first, which AWS does not
//     take for the IKE SA: Select under AWS's policy picks the proposal
//     with MODP_2048, and CheckKE answers INVALID_KE_PAYLOAD(MODP_2048);
//  2. charon retries with the same proposals and a MODP_2048 KE payload,
//     which CheckKE now accepts; under load our Cookies demand a cookie;
//  3. charon resends with our COOKIE as the first payload and all other
//     payloads byte for byte unchanged, exactly what CookieRetry.Resend
//     builds from its previous request; our Cookies accept it;
//  4. we answer with Select's reply (charonAuth), and narrow the traffic
//     selectors of the IKE_AUTH request charon sends next.
func TestCharonInitiator(t *testing.T) {
	if err := strongswan.Available(nil); err != nil {
		t.Skip(err)
	}
	_, cgwNS, vgwNS := netlab.NewPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sock := listenIn(t, vgwNS, "10.99.0.1:500")
	// retransmit after 1 s, so that the IKE_AUTH retransmission comes soon
	charon := startCharon(ctx, t, cgwNS, strongswan.Options{LogLevel: 2, Extra: "  retransmit_timeout = 1\n"}, strongswan.Conn{
		Name: "v2", Version: 2, LocalAddrs: "10.99.0.2", RemoteAddrs: "10.99.0.1", KeyingTries: "1",
		Proposals: []string{"aes256-sha256-modp1536-modp2048-ecp256", "aes128gcm16-prfsha384-ecp384"},
		PSK:       charonPSK,
		Children: []strongswan.Child{{Name: "v2-net", LocalTS: []string{"10.1.0.0/16"}, RemoteTS: []string{"0.0.0.0/0"},
			ESPProposals: []string{"aes128-sha256-modp2048"}}},
	})
	go func() { _, _ = charon.Initiate(ctx, "v2-net", 30*time.Second) }()
	seen := map[string]bool{}

	// 1. MODP_1536 in the KE payload: INVALID_KE_PAYLOAD(MODP_2048).
	first, firstB, from := sock.next(seen)
	if from.Addr() != netip.MustParseAddr("10.99.0.2") {
		t.Fatalf("from %v", from)
	}
	offer, ke := findSA(first.Payloads), findKE(first.Payloads)
	if offer == nil || ke == nil || ke.Group != wire.DHModp1536 {
		t.Fatalf("charon's first IKE_SA_INIT: SA %v KE %v", offer, ke)
	}
	ch, err := Select(offer, AWSIKE(), Options{Rule: LowestValue, KEGroup: ke.Group})
	if err != nil {
		t.Fatal(err)
	}
	if ch.Number != 1 || ch.DH != wire.DHModp2048 || ch.String() != "ENCR_AES_CBC-256/AUTH_HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048" {
		t.Fatalf("chose proposal %d: %s", ch.Number, ch)
	}
	keErr := CheckKE(ch.DH, ke)
	if notifyOf(t, keErr) != wire.NotifyInvalidKEPayload {
		t.Fatalf("CheckKE: %v", keErr)
	}
	sock.reply(first, firstB, from, keErr.(*Error).Payload())

	// 2. The retry: same proposals, KE of our group.
	second, secondB, from := sock.next(seen)
	ke2 := findKE(second.Payloads)
	if ke2 == nil || ke2.Group != wire.DHModp2048 {
		t.Fatalf("charon's retry has KE %v, want MODP_2048", ke2)
	}
	// Section 1.2: the retry proposes the full set again; charon moves
	// the requested group to the front of each proposal.
	if a, b := offerSet(offer), offerSet(findSA(second.Payloads)); a != b {
		t.Errorf("charon's retry proposes\n%s\ninstead of\n%s", b, a)
	}
	ch2, err := Select(findSA(second.Payloads), AWSIKE(), Options{Rule: LowestValue, KEGroup: ke2.Group})
	if err != nil || ch2.DH != wire.DHModp2048 {
		t.Fatalf("retry: %v %v", ch2, err)
	}
	if err := CheckKE(ch2.DH, ke2); err != nil {
		t.Fatalf("CheckKE of the retry: %v", err)
	}
	cookies, err := NewCookies(CookieConfig{Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	demand, err := cookies.Check(second.Header.SPIi, from.Addr(), second.Payloads, 2)
	if err != nil || demand == nil {
		t.Fatalf("no cookie demanded at the threshold: %v", err)
	}
	sock.reply(second, secondB, from, demand)

	// 3. The resend with COOKIE first, the rest unchanged.
	third, thirdB, from := sock.next(seen)
	if len(third.Payloads) == 0 {
		t.Fatal("empty resend")
	}
	if n, ok := third.Payloads[0].(*wire.Notify); !ok || n.NotifyType != wire.NotifyCookie || !bytes.Equal(n.Data, demand.Data) {
		t.Fatalf("charon's resend starts with %v, want our COOKIE", third.Payloads[0])
	}
	if third.Header.SPIi != second.Header.SPIi {
		t.Error("charon changed SPIi in the cookie resend")
	}
	if !bytes.Equal(encodePayloads(t, third.Payloads[1:]), encodePayloads(t, second.Payloads)) {
		t.Error("charon's resend changed payloads other than the COOKIE")
	}
	ours, err := (&CookieRetry{}).Resend(second.Payloads, []wire.Payload{demand})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(encodePayloads(t, ours), encodePayloads(t, third.Payloads)) {
		t.Error("CookieRetry.Resend builds another request than charon's")
	}
	if n, err := cookies.Check(third.Header.SPIi, from.Addr(), third.Payloads, 100); n != nil || err != nil {
		t.Errorf("our cookie in charon's resend refused: %v %v", n, err)
	}
	t.Logf("charon: INVALID_KE_PAYLOAD retry with %s, cookie resend of %d payloads accepted", ke2.Group, len(third.Payloads))

	// 4. Answer the IKE_SA_INIT, open charon's IKE_AUTH and check its
	// child SA offer and traffic selectors.
	charonAuth(t, sock, seen, third, thirdB, from)
}

// offerSet is the proposals of sa with their transforms sorted, one line
// each.
func offerSet(sa *wire.SA) string {
	if sa == nil {
		return "no SA payload"
	}
	var lines []string
	for _, p := range sa.Proposals {
		var names []string
		for _, t := range p.Transforms {
			names = append(names, t.Name())
		}
		slices.Sort(names)
		lines = append(lines, fmt.Sprintf("%d %s %x %s", p.Number, p.Protocol, p.SPI, strings.Join(names, ",")))
	}
	return strings.Join(lines, "\n")
}
