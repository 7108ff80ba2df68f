package ike

import (
	"testing"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// Informational rows of the hostile-peer battery: spoofed plaintext
// notifies and DELETEs, DELETEs for unknown SPIs, mangled protected
// DELETEs and DPD messages, and a peer that shuts down without DELETE.

// vgwUp asserts that the vgw kept its ISAKMP SA and its pair.
func vgwUp(t *testing.T, r *batRelay) {
	tn := r.h.vgw.byName["tunnel1"]
	if tn.sa == nil || tn.sa.state != stateEstablished || len(tn.children) != 1 {
		t.Errorf("the vgw lost its SAs over it")
	}
}

// cgwShutdown terminates the cgw's tunnel (DELETEs for the pair and the
// ISAKMP SA, as at a shutdown).
func cgwShutdown(r *batRelay) { r.h.cgw.byName["tunnel1"].terminate("shutdown") }

// dpdProbe makes the cgw send one R-U-THERE.
func dpdProbe(r *batRelay) {
	r.h.cgw.byName["tunnel1"].sa.sendDPD(isakmp.NotifyRUThere, 7)
}

// spoofPlain injects a plaintext informational with the SA's cookies.
func spoofPlain(to harnessAddr, p isakmp.Payload) func(r *batRelay) {
	return func(r *batRelay) {
		recv := r.h.cgw
		if to == toVGW {
			recv = r.h.vgw
		}
		sa := recv.byName["tunnel1"].sa
		m := &isakmp.Message{Header: sa.header(isakmp.ExchangeInformational, 0x0badf00d), Payloads: []isakmp.Payload{p}}
		if b, err := m.Encode(); err == nil {
			r.h.inject(recv, b)
		}
	}
}

// infoCase is an informational row: after(r) runs once the tunnel is up.
type infoCase struct {
	name   string
	mangle mangleFn
	setup  func(*batRelay)
	after  func(*batRelay)
	want   string
	counts []string
	check  func(t *testing.T, r *batRelay)
}

func informationalCases() []batCase {
	delIKE := func(r *batRelay) isakmp.Payload {
		return &isakmp.Delete{DOI: isakmp.DOIIPsec, ProtocolID: isakmp.ProtoISAKMP, SPISize: 16, SPIs: [][]byte{r.h.vgw.byName["tunnel1"].sa.cookiesSPI()}}
	}
	authFailed := &isakmp.Notify{DOI: isakmp.DOIIPsec, ProtocolID: isakmp.ProtoISAKMP, NotifyType: isakmp.NotifyAuthenticationFailed}
	unknownDel := &isakmp.Delete{DOI: isakmp.DOIIPsec, ProtocolID: isakmp.ProtoESP, SPISize: 4, SPIs: [][]byte{{0xde, 0xad, 0xbe, 0xef}}}
	rows := []infoCase{
		{name: "INFO/spoofed-plain-notify-to-vgw", after: spoofPlain(toVGW, authFailed), want: "up", counts: []string{"vgw.unauthenticated_notifies"}},
		{name: "INFO/spoofed-plain-notify-to-cgw", after: spoofPlain(toCGW, authFailed), want: "up", counts: []string{"cgw.unauthenticated_notifies"}},
		{name: "INFO/spoofed-plain-delete-to-vgw", after: func(r *batRelay) { spoofPlain(toVGW, delIKE(r))(r) }, want: "up", counts: []string{"vgw.drops.unauthenticated-delete"}},
		{name: "INFO/spoofed-plain-delete-to-cgw", after: func(r *batRelay) { spoofPlain(toCGW, delIKE(r))(r) }, want: "up", counts: []string{"cgw.drops.unauthenticated-delete"}},
		{name: "INFO/delete-unknown-spi", after: func(r *batRelay) {
			first, body, _ := isakmp.EncodePayloads([]isakmp.Payload{unknownDel})
			r.h.sendInfo(toVGW, byte(first), body)
		}, want: "up", counts: []string{"vgw.drops.delete-unknown-spi"}},
		{name: "INFO/delete-isakmp-unknown-cookies", after: func(r *batRelay) {
			other := &isakmp.Delete{DOI: isakmp.DOIIPsec, ProtocolID: isakmp.ProtoISAKMP, SPISize: 16, SPIs: [][]byte{bytesOf(0x77, 16)}}
			first, body, _ := isakmp.EncodePayloads([]isakmp.Payload{other})
			r.h.sendInfo(toVGW, byte(first), body)
		}, want: "up", counts: []string{"vgw.drops.delete-unknown-spi"}, check: vgwUp},
		{name: "INFO/delete-dropped", mangle: dropAll("INFO-C"), after: cgwShutdown, want: "down", check: vgwUp},
		{name: "INFO/delete-corrupt-body", mangle: everyCopy(corruptBody("INFO-C")), after: cgwShutdown, want: "down", check: vgwUp,
			counts: []string{"vgw.drops.informational-bad-hash"}},
		{name: "INFO/delete-wrong-msgid", mangle: everyCopy(wrongMsgID("INFO-C")), after: cgwShutdown, want: "down", check: vgwUp,
			counts: []string{"vgw.drops.informational-malformed"}},
		{name: "INFO/delete-corrupt-hash", setup: impair("INFO-C", Impairment{Verb: ImpairCorruptHash, Exchange: ImpairInformational}),
			after: cgwShutdown, want: "down", check: vgwUp, counts: []string{"vgw.drops.informational-bad-hash"}},
		{name: "INFO/delete-omit-hash", setup: impair("INFO-C", Impairment{Verb: ImpairOmitHash, Exchange: ImpairInformational}),
			after: cgwShutdown, want: "down", check: vgwUp, counts: []string{"vgw.drops.informational-malformed"}},
		{name: "INFO/no-delete-on-shutdown", setup: impair("INFO-C", Impairment{Verb: ImpairNoDelete}), after: func(r *batRelay) {
			cgwShutdown(r)
			r.run(50e6, nil)
			r.h.cgw.byName["tunnel1"].wantUp = true
			r.h.start() // the restarted peer's new phase 1 carries INITIAL-CONTACT
		}, want: "up", check: func(t *testing.T, r *batRelay) {
			if n := len(r.h.vgw.sas); n != 1 {
				t.Errorf("the vgw holds %d ISAKMP SAs after the peer came back, want 1 (INITIAL-CONTACT)", n)
			}
		}},
		{name: "INFO/r-u-there-duplicate", mangle: duplicate("INFO-C"), after: dpdProbe, want: "up", check: func(t *testing.T, r *batRelay) {
			if r.copies["INFO-V"] != 1 {
				t.Errorf("%d R-U-THERE-ACKs for one probe sent twice, want 1", r.copies["INFO-V"])
			}
		}},
		{name: "INFO/r-u-there-ack-dropped", mangle: dropAll("INFO-V"), after: dpdProbe, want: "up"},
		{name: "INFO/r-u-there-replayed-later", mangle: replayLater("INFO-C"), after: func(r *batRelay) {
			dpdProbe(r)
			r.run(50e6, nil)
			r.flushHeld()
		}, want: "up", check: func(t *testing.T, r *batRelay) {
			if r.copies["INFO-V"] != 1 {
				t.Errorf("%d R-U-THERE-ACKs for a probe and its replay, want 1", r.copies["INFO-V"])
			}
		}},
	}
	var out []batCase
	for _, row := range rows {
		row := row
		out = append(out, batCase{name: row.name, o: harnessOpts{noPFS: true}, mangle: row.mangle, setup: row.setup,
			after: row.after, want: row.want, counts: row.counts, check: row.check})
	}
	return out
}

// dropAll drops every copy of msg.
func dropAll(msg string) mangleFn {
	return func(r *batRelay, name string, copy int, p harnessPacket) []harnessPacket {
		if name == msg {
			return nil
		}
		return []harnessPacket{p}
	}
}

// everyCopy applies a first-copy mangle to every datagram of its name
// (informational messages of one name are different messages).
func everyCopy(f mangleFn) mangleFn {
	return func(r *batRelay, name string, _ int, p harnessPacket) []harnessPacket { return f(r, name, 1, p) }
}

func bytesOf(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}
