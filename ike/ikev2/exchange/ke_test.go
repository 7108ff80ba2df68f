package exchange

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// TestCheckKE: the responder's decision on the KE payload.
func TestCheckKE(t *testing.T) {
	ke := func(g wire.DHGroup, n int) *wire.KE { return &wire.KE{Group: g, Data: make([]byte, n)} }
	cases := []struct {
		name   string
		chosen wire.DHGroup
		ke     *wire.KE
		notify wire.NotifyType
		group  wire.DHGroup // asked for with INVALID_KE_PAYLOAD
	}{
		{"matching MODP 2048", wire.DHModp2048, ke(wire.DHModp2048, 256), 0, 0},
		{"matching ECP 256", wire.DHECP256, ke(wire.DHECP256, 64), 0, 0},
		{"other group", wire.DHModp2048, ke(wire.DHECP256, 64), wire.NotifyInvalidKEPayload, wire.DHModp2048},
		{"unsupported group", wire.DHECP384, ke(31, 32), wire.NotifyInvalidKEPayload, wire.DHECP384},
		{"no KE payload", wire.DHModp1024, nil, wire.NotifyInvalidKEPayload, wire.DHModp1024},
		{"short data", wire.DHModp2048, ke(wire.DHModp2048, 255), wire.NotifyInvalidSyntax, 0},
		{"long data", wire.DHECP256, ke(wire.DHECP256, 65), wire.NotifyInvalidSyntax, 0},
		{"empty data", wire.DHECP521, ke(wire.DHECP521, 0), wire.NotifyInvalidSyntax, 0},
		{"no PFS, no KE", wire.DHNone, nil, 0, 0},
		{"no PFS but a KE", wire.DHNone, ke(wire.DHModp2048, 256), wire.NotifyInvalidSyntax, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckKE(c.chosen, c.ke)
			if got := notifyOf(t, err); got != c.notify {
				t.Fatalf("notify %v (%v), want %v", got, err, c.notify)
			}
			if c.notify != wire.NotifyInvalidKEPayload {
				return
			}
			n := err.(*Error).Payload()
			// it must survive the codec and name the group
			b, encErr := (&wire.Message{Header: wire.Header{Exchange: wire.ExchangeIKESAInit, Flags: wire.FlagResponse},
				Payloads: []wire.Payload{n}}).Encode()
			if encErr != nil {
				t.Fatal(encErr)
			}
			m, decErr := wire.Decode(b)
			if decErr != nil {
				t.Fatal(decErr)
			}
			g, gErr := wire.FindNotify(m.Payloads, wire.NotifyInvalidKEPayload).Group()
			if gErr != nil || g != c.group {
				t.Errorf("INVALID_KE_PAYLOAD names %v (%v), want %v", g, gErr, c.group)
			}
		})
	}
}

// TestKERetry: the initiator retries only with a group it proposed and has
// not sent, a bounded number of times.
func TestKERetry(t *testing.T) {
	offer := sa(ike(cbc128, sha1, prf1, dh19, dh14, dh2), ike(gcm128, prf256, dh20, dh19))
	if got := OfferedGroups(offer); !bytes.Equal(groupBytes(got), groupBytes([]wire.DHGroup{19, 14, 2, 20})) {
		t.Fatalf("OfferedGroups %v", got)
	}
	r := &KERetry{Offered: OfferedGroups(offer)}
	g, err := r.Retry(wire.DHECP256, wire.InvalidKE(wire.DHModp2048))
	if err != nil || g != wire.DHModp2048 {
		t.Fatalf("first retry: %v %v", g, err)
	}
	g, err = r.Retry(wire.DHModp2048, wire.InvalidKE(wire.DHECP384))
	if err != nil || g != wire.DHECP384 {
		t.Fatalf("second retry: %v %v", g, err)
	}
	if _, err := r.Retry(wire.DHECP384, wire.InvalidKE(wire.DHECP256)); err == nil || !strings.Contains(err.Error(), "already sent") {
		t.Errorf("a group already sent: %v", err)
	}
	for _, c := range []struct {
		name string
		n    *wire.Notify
		want string
	}{
		{"not proposed", wire.InvalidKE(wire.DHModp1536), "did not propose"},
		{"NONE", wire.InvalidKE(wire.DHNone), "did not propose"},
		{"the group we sent", wire.InvalidKE(wire.DHECP256), "already sent"},
		{"no notify", nil, "no INVALID_KE_PAYLOAD"},
		{"short data", &wire.Notify{NotifyType: wire.NotifyInvalidKEPayload, Data: []byte{14}}, "1 data bytes"},
		{"another notify", &wire.Notify{NotifyType: wire.NotifyCookie, Data: []byte{0, 14}}, "carries no group"},
	} {
		r := &KERetry{Offered: OfferedGroups(offer)}
		if _, err := r.Retry(wire.DHECP256, c.n); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	// A peer cycling through groups is stopped after Max retries.
	groups := []wire.DHGroup{14, 15, 16, 17, 18, 19, 20}
	r = &KERetry{Offered: groups, Max: 3}
	sent := wire.DHGroup(14)
	n := 0
	for i := 1; i < len(groups); i++ {
		g, err := r.Retry(sent, wire.InvalidKE(groups[i]))
		if err != nil {
			if !strings.Contains(err.Error(), "giving up") {
				t.Fatalf("stopped with %v", err)
			}
			break
		}
		sent, n = g, n+1
	}
	if n != 3 || r.Tries() != 4 {
		t.Errorf("%d retries after %d refusals, want 3 after 4", n, r.Tries())
	}
}

func groupBytes(gs []wire.DHGroup) []byte {
	var b []byte
	for _, g := range gs {
		b = append(b, byte(g>>8), byte(g))
	}
	return b
}
