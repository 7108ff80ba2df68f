package exchange

import (
	"context"
	"crypto/rand"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/ike/dh"
	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
	"github.com/vpnlab/vpnlab/internal/netlab"
	"github.com/vpnlab/vpnlab/internal/strongswan"
)

// initiator is a bare IKE_SA_INIT initiator on a UDP socket: it builds
// requests from this package's decisions only.
type initiator struct {
	sock *peerSocket
	to   netip.AddrPort
	spi  [8]byte
	ps   []wire.Payload
	kr   KERetry
	cr   CookieRetry
}

func newInitiator(t *testing.T, sock *peerSocket, to netip.AddrPort, offer *wire.SA, group wire.DHGroup) *initiator {
	in := &initiator{sock: sock, to: to, kr: KERetry{Offered: OfferedGroups(offer)}}
	_, _ = rand.Read(in.spi[:])
	nonce := make([]byte, 32)
	_, _ = rand.Read(nonce)
	in.ps = []wire.Payload{offer, keOf(t, group), &wire.Nonce{Data: nonce}}
	return in
}

func keOf(t *testing.T, group wire.DHGroup) *wire.KE {
	g, err := dh.ByID(uint16(group))
	if err != nil {
		t.Fatal(err)
	}
	k, err := g.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &wire.KE{Group: group, Data: k.Public()}
}

// exchange sends the current request and returns the response.
func (in *initiator) exchange(t *testing.T) *wire.Message {
	t.Helper()
	m := &wire.Message{Header: wire.Header{SPIi: in.spi, Exchange: wire.ExchangeIKESAInit, Flags: wire.FlagInitiator}, Payloads: in.ps}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	for try := 0; try < 3; try++ {
		if _, err := in.sock.conn.WriteToUDPAddrPort(b, in.to); err != nil {
			t.Fatal(err)
		}
		_ = in.sock.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			n, _, err := in.sock.conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				break // resend
			}
			r, err := wire.Decode(buf[:n])
			if err != nil {
				t.Fatalf("charon's response does not decode: %v", err)
			}
			if r.Header.SPIi == in.spi && r.Header.Response() && r.Header.MessageID == 0 {
				return r
			}
		}
	}
	t.Fatal("no IKE_SA_INIT response from charon")
	return nil
}

// setKE replaces the KE payload, keeping every other payload and its place.
func (in *initiator) setKE(ke *wire.KE) {
	for i, p := range in.ps {
		if _, ok := p.(*wire.KE); ok {
			in.ps[i] = ke
		}
	}
}

// TestCharonResponder runs charon as the responder (cookies demanded from
// one half-open IKE SA on, proposal aes128-sha256-modp2048) and a bare
// initiator made of this package's initiator rules: its KE payload of
// ECP_256 is refused with INVALID_KE_PAYLOAD(MODP_2048), KERetry takes
// MODP_2048 (in our proposals), the COOKIE is answered by CookieRetry's
// resend (the same request with the COOKIE last is refused again), and
// charon finally answers IKE_SA_INIT with its SA (which
// passes CheckReply), KE and nonce: it accepted both our retry and our
// cookie resend.
func TestCharonResponder(t *testing.T) {
	if err := strongswan.Available(nil); err != nil {
		t.Skip(err)
	}
	_, cgwNS, vgwNS := netlab.NewPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	startCharon(ctx, t, vgwNS, strongswan.Options{LogLevel: 1, Extra: "  cookie_threshold = 1\n"}, strongswan.Conn{
		Name: "v2", Version: 2, LocalAddrs: "10.99.0.1", RemoteAddrs: "10.99.0.2",
		Proposals: []string{"aes128-sha256-modp2048"}, PSK: charonPSK,
		Children: []strongswan.Child{{Name: "v2-net", LocalTS: []string{"0.0.0.0/0"}, RemoteTS: []string{"0.0.0.0/0"},
			ESPProposals: []string{"aes128-sha256"}}},
	})
	sock := listenIn(t, cgwNS, "10.99.0.2:500")
	to := netip.MustParseAddrPort("10.99.0.1:500")
	offer := sa(ike(cbc128, sha2i, prf256, dh19, dh14))

	// One half-open IKE SA, so that charon demands cookies from now on.
	warm := newInitiator(t, sock, to, offer, wire.DHModp2048)
	if r := warm.exchange(t); findSA(r.Payloads) == nil {
		t.Fatalf("warm-up request not answered with an SA: %v", r.Payloads)
	}

	in := newInitiator(t, sock, to, offer, wire.DHECP256)
	sent := wire.DHECP256
	var events []string
	for round := 0; ; round++ {
		if round == 8 {
			t.Fatalf("no IKE_SA_INIT response after %v", events)
		}
		r := in.exchange(t)
		if n := wire.FindNotify(r.Payloads, wire.NotifyInvalidKEPayload); n != nil {
			g, err := in.kr.Retry(sent, n)
			if err != nil {
				t.Fatal(err)
			}
			events = append(events, "INVALID_KE_PAYLOAD("+g.String()+")")
			in.setKE(keOf(t, g))
			sent = g
			continue
		}
		if c, _ := Cookie(r.Payloads); c != nil {
			if len(events) == 0 {
				cookieLastRefused(t, in, c)
			}
			ps, err := in.cr.Resend(in.ps, r.Payloads)
			if err != nil {
				t.Fatal(err)
			}
			in.ps = ps
			events = append(events, "COOKIE")
			continue
		}
		answer, ke := findSA(r.Payloads), findKE(r.Payloads)
		if answer == nil || ke == nil || ke.Group != wire.DHModp2048 || len(answer.Proposals) != 1 {
			t.Fatalf("after %v charon answered %v", events, r.Payloads)
		}
		ch, err := CheckReply(offer, answer)
		if err != nil || ch.DH != wire.DHModp2048 {
			t.Fatalf("charon's SA payload: %v %v", ch, err)
		}
		events = append(events, "SA "+ch.String())
		break
	}
	got := strings.Join(events, ", ")
	if !strings.Contains(got, "COOKIE") || !strings.Contains(got, "INVALID_KE_PAYLOAD(MODP_2048)") {
		t.Errorf("charon's answers %s: want a COOKIE and INVALID_KE_PAYLOAD(MODP_2048) before its SA", got)
	}
	t.Logf("charon's answers: %s", got)
}

// cookieLastRefused: the same request with charon's cookie as the last
// payload instead of the first (section 2.6) is answered with a cookie
// demand again: the position matters to charon.
func cookieLastRefused(t *testing.T, in *initiator, cookie []byte) {
	t.Helper()
	saved := in.ps
	in.ps = append(append([]wire.Payload(nil), saved...), &wire.Notify{NotifyType: wire.NotifyCookie, Data: cookie})
	r := in.exchange(t)
	in.ps = saved
	if c, _ := Cookie(r.Payloads); c == nil {
		t.Errorf("charon accepted a request with its COOKIE last: %v", r.Payloads)
	}
}
