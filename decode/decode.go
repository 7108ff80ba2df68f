package decode

import (
	"errors"
	"fmt"
	"io"
	"sort"
)

// Report is everything the decoder found in one capture.
type Report struct {
	File    string         `json:"file"`
	Format  string         `json:"format"`
	Frames  int            `json:"frames"`
	Counts  map[string]int `json:"counts"`  // ike, keepalive, esp, ah, other, damaged, ...
	Skipped map[string]int `json:"skipped"` // frames not decoded, by reason
	Damaged []string       `json:"damaged,omitempty"`
	IKE     []IKEReport    `json:"ike"`
	IKEv2   []IKEv2Report  `json:"ikev2,omitempty"`
	ESP     []ESPReport    `json:"esp"`
	Keys    KeySummary     `json:"keys"`
	// ReadError is set when the file ended in a damaged record; everything
	// before it was decoded.
	ReadError string `json:"read_error,omitempty"`
	// Problems lists what makes the exit status 1, in plain words.
	Problems []string `json:"problems,omitempty"`
}

// KeySummary says which keys were given (never the keys themselves) and
// what they allow.
type KeySummary struct {
	IKEv1Keys int      `json:"ikev1_keys"`
	IKEv2Keys int      `json:"ikev2_keys"`
	ESPKeys   int      `json:"esp_keys"`
	PSKs      int      `json:"psks"`
	Ignored   []string `json:"ignored,omitempty"`
	Can       []string `json:"can"`
	Cannot    []string `json:"cannot"`
}

// Decode reads a capture and builds its report. An error means the input
// is not a capture at all; damage inside the file is in the report.
func Decode(r io.Reader, name string, keys *Keys) (*Report, error) {
	return DecodeWithPolicy(r, name, keys, nil)
}

// DecodeWithPolicy is Decode with the gateways' configurations, so that a
// refused proposal is set against what the refusing side allows.
func DecodeWithPolicy(r io.Reader, name string, keys *Keys, pol *Policy) (*Report, error) {
	if keys == nil {
		keys = NewKeys()
	}
	src, format, err := openCapture(r)
	if err != nil {
		return nil, err
	}
	rep := &Report{File: name, Format: format, Counts: map[string]int{}, Skipped: map[string]int{}}
	ra := newReassembler()
	ikes := newIKEDecoder(keys)
	ikes.v2 = newIKEv2Decoder(keys)
	esps := newESPDecoder(keys)
	for rep.Frames < MaxFrames {
		f, err := src.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			rep.ReadError = fmt.Sprintf("after frame %d: %v", rep.Frames, err)
			break
		}
		rep.Frames++
		rep.frame(f, ra, ikes, esps)
	}
	if n := ra.incomplete(); n > 0 {
		rep.Counts["incomplete fragments"] = n
	}
	for _, c := range ikes.order {
		rep.IKE = append(rep.IKE, ikes.sas[c].report(keys, pol))
	}
	for _, c := range ikes.v2.order {
		rep.IKEv2 = append(rep.IKEv2, ikes.v2.sas[c].report(pol))
	}
	rep.Counts["isakmp undecodable"] = ikes.bad + ikes.v2.bad
	rep.Damaged = append(rep.Damaged, ikes.badAt...)
	rep.Damaged = append(rep.Damaged, ikes.v2.badAt...)
	rep.ESP = esps.reports()
	rep.Keys = summarizeKeys(keys)
	rep.problems()
	return rep, nil
}

func (rep *Report) frame(f Frame, ra *reassembler, ikes *ikeDecoder, esps *espDecoder) {
	ip, why := networkLayer(f)
	if ip == nil {
		rep.Skipped[why]++
		return
	}
	d, ok, err := ra.add(f, ip)
	if err != nil {
		rep.Counts["damaged"]++
		rep.Damaged = appendCapped(rep.Damaged, fmt.Sprintf("frame %d: %v", f.N, err))
		return
	}
	if !ok {
		rep.Counts["fragments"]++
		return
	}
	p := classify(d)
	switch p.kind {
	case kindIKE:
		rep.Counts["ike"]++
		ikes.add(p)
	case kindKeepalive:
		rep.Counts["nat-keepalive"]++
	case kindESP, kindAH:
		rep.Counts[map[kind]string{kindESP: "esp", kindAH: "ah"}[p.kind]]++
		esps.add(p)
	case kindDamaged:
		rep.Counts["damaged"]++
		rep.Damaged = appendCapped(rep.Damaged, fmt.Sprintf("frame %d: %s", d.Frame, p.why))
	default:
		rep.Skipped[p.why]++
	}
}

func summarizeKeys(k *Keys) KeySummary {
	s := KeySummary{ESPKeys: len(k.ESP), PSKs: len(k.PSKs)}
	for _, v := range k.IKE {
		s.IKEv1Keys += len(v)
	}
	for _, v := range k.IKEv2 {
		s.IKEv2Keys += len(v)
	}
	for t, n := range k.Ignored {
		s.Ignored = append(s.Ignored, fmt.Sprintf("%d %s record(s)", n, t))
	}
	sort.Strings(s.Ignored)
	if s.IKEv1Keys > 0 {
		s.Can = append(s.Can, "decrypt phase 1 messages 5/6 (aggressive 3), quick mode and informational exchanges of the logged SAs; tell 'decrypts to valid payloads' from 'garbage' (a wrong key); two different keys for one cookie that decrypt the initiator's messages differently prove a pre-shared key mismatch")
	}
	if s.IKEv2Keys > 0 {
		s.Can = append(s.Can, "verify the integrity of and decrypt IKEv2 SK/SKF messages (AES-CBC with HMAC-SHA1/SHA2, AES-GCM-16) of the logged IKE SAs, reassemble RFC 7383 fragments, and read IKE_AUTH, CREATE_CHILD_SA and INFORMATIONAL (IDs, AUTH method, child proposals, traffic selectors, notifies, rekeys, deletes)")
		s.Cannot = append(s.Cannot, "verify an IKEv2 AUTH payload: it needs SK_pi/SK_pr, which no ikev2_decryption_table holds; a PSK mismatch is told from the peer's AUTHENTICATION_FAILED")
	}
	if s.PSKs > 0 {
		s.Can = append(s.Can, "verify HASH_I and HASH_R (SKEYID = prf(PSK, Ni|Nr) needs no DH secret); in main mode the ID payloads must be decrypted first (needs the IKEv1 key), in aggressive mode they are plaintext")
	}
	if s.ESPKeys > 0 {
		s.Can = append(s.Can, "verify ICVs and decrypt ESP (AES-CBC, AES-GCM-16, NULL with HMAC-SHA1/SHA2; read-only also DES, 3DES and HMAC-MD5) and summarise the inner flows")
	}
	s.Cannot = append(s.Cannot,
		"verify quick mode HASH(1..3) or derive keys: they need SKEYID_a/SKEYID_d, which need the Diffie-Hellman secret g^xy that no key log holds",
		"decrypt ESP with AES-CTR or AES-GCM-8/12 (not implemented); such SAs are counted, not decrypted")
	if s.PSKs == 0 {
		s.Cannot = append(s.Cannot, "verify HASH_I/HASH_R without --psk")
	}
	return s
}

// problems collects what makes the exit status 1.
func (rep *Report) problems() {
	add := func(f string, a ...any) { rep.Problems = append(rep.Problems, fmt.Sprintf(f, a...)) }
	for _, s := range rep.IKE {
		if s.Status == "failed" {
			add("ISAKMP SA %s: %s", s.ICookie, s.Reason)
		}
		if s.Undecrypted > 0 {
			add("ISAKMP SA %s: %d encrypted message(s) not decrypted", s.ICookie, s.Undecrypted)
		}
		for _, q := range s.Quick {
			if q.Status == "failed" {
				add("quick mode %s of %s: %s", q.MessageID, s.ICookie, q.Reason)
			}
		}
	}
	for _, s := range rep.IKEv2 {
		if s.Status == "failed" || s.Status == "unknown" {
			add("IKEv2 SA %s: %s", s.SPIi, s.Reason)
		}
		if s.Undecrypted > 0 {
			add("IKEv2 SA %s: %d encrypted message(s) not decrypted", s.SPIi, s.Undecrypted)
		}
		for _, c := range s.ChildFailures {
			add("IKEv2 SA %s: %s", s.SPIi, c)
		}
	}
	for _, e := range rep.ESP {
		if e.Protocol != "AH" && e.Decrypted < e.Packets-e.Replays {
			add("%s SPI %s %s -> %s: %d of %d packets not decrypted", e.Protocol, e.SPI, e.Src, e.Dst, e.Packets-e.Replays-e.Decrypted, e.Packets)
		}
	}
	if n := rep.Counts["damaged"] + rep.Counts["isakmp undecodable"]; n > 0 {
		add("%d damaged or undecodable packet(s)", n)
	}
	if rep.ReadError != "" {
		add("the capture file is damaged %s", rep.ReadError)
	}
}

// ExitCode is 0 when everything decoded and every negotiation succeeded,
// 1 otherwise (see Problems).
func (rep *Report) ExitCode() int {
	if len(rep.Problems) > 0 {
		return 1
	}
	return 0
}
