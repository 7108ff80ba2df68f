package ike

import (
	"testing"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// Informational rows of the hostile-peer battery: spoofed plaintext
// notifies and DELETEs, DELETEs for unknown SPIs, mangled protected
// DELETEs and DPD messages, and a peer that shuts down without DELETE.

// The rows are written for the cgw as initiator ("-to-vgw": to the
// responder); with vgwInit they run with the roles swapped and
// mirrorCase renames them.

// respUp asserts that the responder kept its ISAKMP SA and its pair.
func respUp(t *testing.T, r *batRelay) {
	tn := r.resp().byName["tunnel1"]
	if tn.sa == nil || tn.sa.state != stateEstablished || len(tn.children) != 1 {
		t.Errorf("the responder lost its SAs over it")
	}
}

// iniShutdown terminates the initiator's tunnel (DELETEs for the pair and
// the ISAKMP SA, as at a shutdown).
func iniShutdown(r *batRelay) { r.ini().byName["tunnel1"].terminate("shutdown") }

// dpdProbe makes the initiator send one R-U-THERE.
func dpdProbe(r *batRelay) {
	r.ini().byName["tunnel1"].sa.sendDPD(isakmp.NotifyRUThere, 7)
}

// spoofPlain injects a plaintext informational with the SA's cookies into
// the initiator (toResp false) or the responder.
func spoofPlain(toResp bool, p isakmp.Payload) func(r *batRelay) {
	return func(r *batRelay) {
		recv := r.ini()
		if toResp {
			recv = r.resp()
		}
		sa := recv.byName["tunnel1"].sa
		m := &isakmp.Message{Header: sa.header(isakmp.ExchangeInformational, 0x0badf00d), Payloads: []isakmp.Payload{p}}
		if b, err := m.Encode(); err == nil {
			r.h.inject(recv, b)
		}
	}
}

// sendInfoToResp seals payloads as a protected informational to the
// responder, as the initiator would (the harness's sendInfo).
func sendInfoToResp(r *batRelay, p isakmp.Payload) {
	to := toVGW
	if r.vgwInit {
		to = toCGW
	}
	first, body, _ := isakmp.EncodePayloads([]isakmp.Payload{p})
	r.h.sendInfo(to, byte(first), body)
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

// informationalCases: ini and resp are the names of the informational
// messages the initiator and the responder send (INFO-C and INFO-V when
// the cgw initiates).
func informationalCases(vgwInit bool) []batCase {
	ini, resp := "INFO-C", "INFO-V"
	if vgwInit {
		ini, resp = resp, ini
	}
	delIKE := func(r *batRelay) isakmp.Payload {
		return &isakmp.Delete{DOI: isakmp.DOIIPsec, ProtocolID: isakmp.ProtoISAKMP, SPISize: 16, SPIs: [][]byte{r.resp().byName["tunnel1"].sa.cookiesSPI()}}
	}
	authFailed := &isakmp.Notify{DOI: isakmp.DOIIPsec, ProtocolID: isakmp.ProtoISAKMP, NotifyType: isakmp.NotifyAuthenticationFailed}
	unknownDel := &isakmp.Delete{DOI: isakmp.DOIIPsec, ProtocolID: isakmp.ProtoESP, SPISize: 4, SPIs: [][]byte{{0xde, 0xad, 0xbe, 0xef}}}
	otherDel := &isakmp.Delete{DOI: isakmp.DOIIPsec, ProtocolID: isakmp.ProtoISAKMP, SPISize: 16, SPIs: [][]byte{bytesOf(0x77, 16)}}
	oneAck := func(what string) func(t *testing.T, r *batRelay) {
		return func(t *testing.T, r *batRelay) {
			if r.copies[resp] != 1 {
				t.Errorf("%d R-U-THERE-ACKs for %s, want 1", r.copies[resp], what)
			}
		}
	}
	rows := []infoCase{
		{name: "INFO/spoofed-plain-notify-to-vgw", after: spoofPlain(true, authFailed), want: "up", counts: []string{"vgw.unauthenticated_notifies"}},
		{name: "INFO/spoofed-plain-notify-to-cgw", after: spoofPlain(false, authFailed), want: "up", counts: []string{"cgw.unauthenticated_notifies"}},
		{name: "INFO/spoofed-plain-delete-to-vgw", after: func(r *batRelay) { spoofPlain(true, delIKE(r))(r) }, want: "up", counts: []string{"vgw.drops.unauthenticated-delete"}},
		{name: "INFO/spoofed-plain-delete-to-cgw", after: func(r *batRelay) { spoofPlain(false, delIKE(r))(r) }, want: "up", counts: []string{"cgw.drops.unauthenticated-delete"}},
		{name: "INFO/delete-unknown-spi", after: func(r *batRelay) { sendInfoToResp(r, unknownDel) },
			want: "up", counts: []string{"vgw.drops.delete-unknown-spi"}, check: respUp},
		{name: "INFO/delete-isakmp-unknown-cookies", after: func(r *batRelay) { sendInfoToResp(r, otherDel) },
			want: "up", counts: []string{"vgw.drops.delete-unknown-spi"}, check: respUp},
		{name: "INFO/delete-dropped", mangle: dropAll(ini), after: iniShutdown, want: "down", check: respUp},
		{name: "INFO/delete-corrupt-body", mangle: everyCopy(corruptBody(ini)), after: iniShutdown, want: "down", check: respUp,
			counts: []string{"vgw.drops.informational-bad-hash"}},
		{name: "INFO/delete-wrong-msgid", mangle: everyCopy(wrongMsgID(ini)), after: iniShutdown, want: "down", check: respUp,
			counts: []string{"vgw.drops.informational-malformed"}},
		{name: "INFO/delete-corrupt-hash", setup: impair(ini, Impairment{Verb: ImpairCorruptHash, Exchange: ImpairInformational}),
			after: iniShutdown, want: "down", check: respUp, counts: []string{"vgw.drops.informational-bad-hash"}},
		{name: "INFO/delete-omit-hash", setup: impair(ini, Impairment{Verb: ImpairOmitHash, Exchange: ImpairInformational}),
			after: iniShutdown, want: "down", check: respUp, counts: []string{"vgw.drops.informational-malformed"}},
		{name: "INFO/no-delete-on-shutdown", setup: impair(ini, Impairment{Verb: ImpairNoDelete}), after: func(r *batRelay) {
			iniShutdown(r)
			r.run(50e6, nil)
			r.ini().byName["tunnel1"].wantUp = true
			r.start() // the restarted peer's new phase 1 carries INITIAL-CONTACT
		}, want: "up", check: func(t *testing.T, r *batRelay) {
			if n := len(r.resp().sas); n != 1 {
				t.Errorf("the responder holds %d ISAKMP SAs after the peer came back, want 1 (INITIAL-CONTACT)", n)
			}
		}},
		{name: "INFO/r-u-there-duplicate", mangle: duplicate(ini), after: dpdProbe, want: "up", check: oneAck("one probe sent twice")},
		{name: "INFO/r-u-there-ack-dropped", mangle: dropAll(resp), after: dpdProbe, want: "up"},
		{name: "INFO/r-u-there-replayed-later", mangle: replayLater(ini), after: func(r *batRelay) {
			dpdProbe(r)
			r.run(50e6, nil)
			r.flushHeld()
		}, want: "up", check: oneAck("a probe and its replay")},
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
