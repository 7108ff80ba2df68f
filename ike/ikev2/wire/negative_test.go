package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// rawMsg builds a message from a hand-written chain (header fields fixed,
// Length computed): next is the header's Next Payload.
func rawMsg(next PayloadType, chain ...[]byte) []byte {
	b := make([]byte, HeaderLen)
	b[16], b[17], b[18] = byte(next), 0x20, byte(ExchangeIKESAInit)
	for _, c := range chain {
		b = append(b, c...)
	}
	binary.BigEndian.PutUint32(b[24:], uint32(len(b)))
	return b
}

// gen builds a payload: generic header + body.
func gen(next PayloadType, critical bool, body []byte) []byte {
	c := byte(0)
	if critical {
		c = 0x80
	}
	b := []byte{byte(next), c, 0, 0}
	binary.BigEndian.PutUint16(b[2:], uint16(4+len(body)))
	return append(b, body...)
}

var nonce16 = bytes.Repeat([]byte{0x4e}, 16)

func wantDecodeErr(t *testing.T, b []byte, payload PayloadType, off int, reason string) {
	t.Helper()
	_, err := Decode(b)
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("Decode = %v, want a DecodeError", err)
	}
	if de.Payload != payload || de.Offset != off || !strings.Contains(de.Reason, reason) {
		t.Errorf("got %v (payload %s offset %d), want payload %s offset %d reason ~%q", err, de.Payload, de.Offset, payload, off, reason)
	}
}

func TestCriticalBit(t *testing.T) {
	// Nonce, then an unknown type 99 with the critical bit: the message is
	// refused with the type, for UNSUPPORTED_CRITICAL_PAYLOAD.
	b := rawMsg(PayloadNonce, gen(99, false, nonce16), gen(PayloadNone, true, []byte{1, 2, 3}))
	_, err := Decode(b)
	var ce *UnsupportedCriticalError
	if !errors.As(err, &ce) || ce.Type != 99 || ce.Offset != HeaderLen+20 {
		t.Fatalf("Decode = %v, want UnsupportedCriticalError type 99 at %d", err, HeaderLen+20)
	}
	n := UnsupportedCritical(ce.Type)
	if n.NotifyType != NotifyUnsupportedCriticalPayload || !bytes.Equal(n.Data, []byte{99}) {
		t.Errorf("notify %+v", n)
	}
	// Without the critical bit it is skipped, reported as *Unknown, and the
	// message re-encodes to the same bytes.
	b = rawMsg(PayloadNonce, gen(99, false, nonce16), gen(PayloadNone, false, []byte{1, 2, 3}))
	m, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	u, ok := m.Payloads[1].(*Unknown)
	if us := UnknownPayloads(m.Payloads); len(us) != 1 || us[0] != u {
		t.Errorf("UnknownPayloads = %v", us)
	}
	if !ok || u.PType != 99 || !bytes.Equal(u.Data, []byte{1, 2, 3}) {
		t.Fatalf("payload %#v", m.Payloads[1])
	}
	if re, err := m.Encode(); err != nil || !bytes.Equal(re, b) {
		t.Errorf("re-encoded %x %v, want %x", re, err, b)
	}
	// The critical bit on a known payload is ignored (section 2.5).
	if _, err := Decode(rawMsg(PayloadNonce, gen(PayloadNone, true, nonce16))); err != nil {
		t.Errorf("critical known payload: %v", err)
	}
	// IKEv1 payload types (1-32) are unknown in IKEv2.
	if _, err := Decode(rawMsg(PayloadType(1), gen(PayloadNone, true, nil))); !errors.As(err, &ce) || ce.Type != 1 {
		t.Errorf("IKEv1 type 1 with critical bit: %v", err)
	}
}

func TestHeaderErrors(t *testing.T) {
	b := rawMsg(PayloadNonce, gen(PayloadNone, false, nonce16))
	var ve *VersionError
	v1 := append([]byte(nil), b...)
	v1[17] = 0x10
	if _, err := Decode(v1); !errors.As(err, &ve) || ve.Version != 0x10 {
		t.Errorf("version 1: %v", err)
	}
	wantDecodeErr(t, b[:27], PayloadNone, 0, "shorter than the 28-byte header")
	short := append([]byte(nil), b...)
	binary.BigEndian.PutUint32(short[24:], 20)
	wantDecodeErr(t, short, PayloadNone, 24, "less than 28")
	long := append([]byte(nil), b...)
	binary.BigEndian.PutUint32(long[24:], uint32(len(b)+1))
	wantDecodeErr(t, long, PayloadNone, 24, "exceeds the")
	// Bytes after the last payload but within Length.
	wantDecodeErr(t, rawMsg(PayloadNonce, gen(PayloadNone, false, nonce16), []byte{0}), PayloadNone, HeaderLen+20, "1 bytes after the last payload")
	// Truncated generic header, bad payload lengths.
	wantDecodeErr(t, rawMsg(PayloadNonce, gen(PayloadKE, false, nonce16), []byte{0, 0}), PayloadKE, HeaderLen+20, "truncated generic header")
	bad := gen(PayloadNone, false, nonce16)
	binary.BigEndian.PutUint16(bad[2:], 3)
	wantDecodeErr(t, rawMsg(PayloadNonce, bad), PayloadNonce, HeaderLen, "less than 4")
	binary.BigEndian.PutUint16(bad[2:], 21)
	wantDecodeErr(t, rawMsg(PayloadNonce, bad), PayloadNonce, HeaderLen, "exceeds the 20 bytes left")
	// More than MaxPayloads.
	var chain [][]byte
	for i := 0; i <= MaxPayloads; i++ {
		chain = append(chain, gen(PayloadVendorID, false, nil))
	}
	chain[len(chain)-1][0] = 0
	wantDecodeErr(t, rawMsg(PayloadVendorID, chain...), PayloadVendorID, HeaderLen+4*MaxPayloads, "more than 64 payloads")
}

func TestPayloadErrors(t *testing.T) {
	o := HeaderLen // offset of the first payload
	cases := []struct {
		name   string
		t      PayloadType
		body   []byte
		off    int
		reason string
	}{
		{"nonce short", PayloadNonce, make([]byte, 15), o, "nonce of 15 bytes"},
		{"nonce long", PayloadNonce, make([]byte, 257), o, "nonce of 257 bytes"},
		{"KE short", PayloadKE, []byte{0, 14, 0}, o, "at least 4"},
		{"ID short", PayloadIDi, []byte{1, 0, 0}, o, "at least 4"},
		{"AUTH short", PayloadAuth, []byte{2}, o, "at least 4"},
		{"CERT empty", PayloadCert, nil, o, "at least 1"},
		{"notify SPI", PayloadNotify, []byte{3, 4, 0x40, 0x09, 1, 2}, o, "SPI size 4 exceeds"},
		{"delete count", PayloadDelete, []byte{3, 4, 0, 2, 1, 2, 3, 4}, o, "2 SPIs of 4 bytes"},
		{"delete size 0", PayloadDelete, []byte{1, 0, 0, 1}, o, "SPI size 0 with 1 SPIs"},
		{"delete IKE size", PayloadDelete, []byte{1, 8, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8}, o, "SPI size 8 for IKE"},
		{"delete ESP size", PayloadDelete, []byte{3, 2, 0, 1, 1, 2}, o, "SPI size 2 for ESP"},
		{"TS none", PayloadTSi, []byte{0, 0, 0, 0}, o, "no traffic selectors"},
		{"TS type", PayloadTSi, append([]byte{1, 0, 0, 0, 9, 0, 0, 16}, make([]byte, 12)...), o + 8, "unknown type 9"},
		{"TS length", PayloadTSr, append([]byte{1, 0, 0, 0, 7, 0, 0, 40}, make([]byte, 12)...), o + 8, "length 40 for TS_IPV4_ADDR_RANGE"},
		{"TS trailing", PayloadTSi, append(append([]byte{1, 0, 0, 0, 7, 0, 0, 16}, make([]byte, 12)...), 0), o + 24, "1 bytes after the last selector"},
		{"CP attr", PayloadCP, []byte{1, 0, 0, 0, 0, 1, 0, 4, 10}, o + 8, "attribute length 4 exceeds"},
		{"EAP short", PayloadEAP, []byte{1, 2}, o, "at least 4"},
		{"SA empty", PayloadSA, nil, o + 4, "truncated proposal header"},
		{"SA last octet", PayloadSA, []byte{1, 0, 0, 8, 1, 1, 0, 0}, o + 4, "last-substructure octet is 1"},
		{"SA proposal number", PayloadSA, []byte{0, 0, 0, 8, 0, 1, 0, 0}, o + 4, "proposal number 0, want 1"},
		{"SA proposal numbers", PayloadSA, []byte{2, 0, 0, 8, 1, 1, 0, 0, 0, 0, 0, 8, 3, 1, 0, 0}, o + 12, "proposal number 3, want 2"},
		{"SA proposal length", PayloadSA, []byte{0, 0, 0, 9, 1, 1, 0, 0}, o + 4, "proposal length 9"},
		{"SA more proposals", PayloadSA, []byte{2, 0, 0, 8, 1, 1, 0, 0}, o + 12, "truncated proposal header"},
		{"SA spi", PayloadSA, []byte{0, 0, 0, 8, 1, 1, 4, 0}, o + 4, "SPI size 4 exceeds"},
		{"SA transforms", PayloadSA, []byte{0, 0, 0, 8, 1, 1, 0, 1}, o + 12, "transform 1 of 1: truncated"},
		{"SA transform last", PayloadSA, []byte{0, 0, 0, 16, 1, 1, 0, 1, 3, 0, 0, 8, 1, 0, 0, 12}, o + 12, "last-substructure octet 3"},
		{"SA transform len", PayloadSA, []byte{0, 0, 0, 16, 1, 1, 0, 1, 0, 0, 0, 9, 1, 0, 0, 12}, o + 12, "transform length 9"},
		{"SA attr", PayloadSA, []byte{0, 0, 0, 18, 1, 1, 0, 1, 0, 0, 0, 10, 1, 0, 0, 12, 0x80, 14}, o + 20, "truncated attribute"},
		{"SA attr TLV", PayloadSA, []byte{0, 0, 0, 20, 1, 1, 0, 1, 0, 0, 0, 12, 1, 0, 0, 12, 0, 1, 0, 9}, o + 20, "attribute length 9"},
		{"SA extra", PayloadSA, []byte{0, 0, 0, 8, 1, 1, 0, 0, 0}, o + 12, "1 bytes after the last proposal"},
		{"SK empty", PayloadSK, nil, o, "empty encrypted payload"},
		{"SKF zero", PayloadSKF, []byte{0, 0, 0, 1, 0}, o, "fragment number 0 of 1"},
		{"SKF over", PayloadSKF, []byte{0, 3, 0, 2, 0}, o, "fragment number 3 of 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantDecodeErr(t, rawMsg(c.t, gen(PayloadNone, false, c.body)), c.t, c.off, c.reason)
		})
	}
	// SKF fragment 2 naming a first payload.
	wantDecodeErr(t, rawMsg(PayloadSKF, gen(PayloadIDi, false, []byte{0, 2, 0, 2, 0})), PayloadSKF, o, "fragment 2 has next payload IDi")
	// SK not last.
	wantDecodeErr(t, rawMsg(PayloadSK, gen(PayloadIDi, false, []byte{1, 2}), gen(PayloadNone, false, nonce16)), PayloadSK, o, "not the last payload")
	// SK inside a decrypted chain.
	if _, err := DecodePayloads(PayloadSK, gen(PayloadNone, false, []byte{1}), 100); err == nil || !strings.Contains(err.Error(), "SK payload at offset 100: SK inside") {
		t.Errorf("SK inside: %v", err)
	}
}

func TestEncodeErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		p    Payload
	}{
		{"nil", (*KE)(nil)},
		{"nonce", &Nonce{Data: make([]byte, 8)}},
		{"SA empty", &SA{}},
		{"TS empty", &TS{}},
		{"TS type", &TS{Selectors: []Selector{{Type: 9}}}},
		{"delete", &Delete{Protocol: ProtoESP, SPISize: 4, SPIs: [][]byte{{1, 2}}}},
		{"unknown known", &Unknown{PType: PayloadKE}},
		{"too long", &VendorID{Data: make([]byte, 70000)}},
	} {
		if _, err := (&Message{Payloads: []Payload{c.p}}).Encode(); err == nil {
			t.Errorf("%s: encoded", c.name)
		}
	}
	if _, err := (&Message{Payloads: []Payload{&Encrypted{Data: []byte{1}}, &Nonce{Data: nonce16}}}).Encode(); err == nil {
		t.Error("SK before another payload encoded")
	}
}
