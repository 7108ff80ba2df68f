package isakmp

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// MM1 of the capture (180 bytes): header 0-27, SA at 28 (length 56; DOI 32,
// situation 36), proposal at 40 (length 44; #, proto, SPI size 46,
// #transforms 47), transform at 48 (length 36), attributes 56-83 (Life-Duration
// at 80), then VIDs at 84, 96, 116, 140 and 160.
func TestDecodeErrors(t *testing.T) {
	mm1 := loadFrame(t, 1)
	mod := func(f func(b []byte) []byte) []byte {
		b := append([]byte(nil), mm1...)
		return f(b)
	}
	put16 := func(off int, v uint16) func([]byte) []byte {
		return func(b []byte) []byte { binary.BigEndian.PutUint16(b[off:], v); return b }
	}
	set := func(off int, v byte) func([]byte) []byte {
		return func(b []byte) []byte { b[off] = v; return b }
	}
	for _, c := range []struct {
		name    string
		in      []byte
		payload PayloadType
		offset  int
		reason  string
	}{
		{"empty", nil, PayloadNone, 0, "shorter than the 28-byte header"},
		{"truncated header", mm1[:27], PayloadNone, 0, "27 bytes is shorter"},
		{"length beyond data", mm1[:100], PayloadNone, 24, "header length 180 exceeds the 100 bytes"},
		{"length below header", mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[24:], 27); return b }), PayloadNone, 24, "less than 28"},
		{"major version 2", mod(set(17, 0x20)), PayloadNone, 17, "major version 2"},
		{"payload length 3", mod(put16(30, 3)), PayloadSA, 28, "payload length 3 is less than 4"},
		{"payload length past end", mod(put16(30, 200)), PayloadSA, 28, "payload length 200 exceeds the 152 bytes left"},
		{"SA shorter than DOI+situation", mod(put16(30, 8)), PayloadSA, 28, "shorter than DOI and situation"},
		{"SA without proposals", mod(func(b []byte) []byte {
			b = append(b[:40:40], mm1[84:]...)
			binary.BigEndian.PutUint16(b[30:], 12)
			binary.BigEndian.PutUint32(b[24:], uint32(len(b)))
			return b
		}), PayloadSA, 40, "SA without proposals"},
		{"situation secrecy", mod(set(39, 3)), PayloadSA, 36, "situation 0x3 not supported"},
		{"proposal length past SA", mod(put16(42, 60)), PayloadSA, 40, "proposal length 60 exceeds payload (44 left)"},
		{"proposal length below 8", mod(put16(42, 6)), PayloadSA, 40, "proposal length 6 is less than 8"},
		{"proposal next payload", mod(set(40, 3)), PayloadSA, 40, "next payload 3 inside SA"},
		{"proposal announces another", mod(set(40, 2)), PayloadSA, 40, "announces another proposal"},
		{"SPI size past proposal", mod(set(46, 41)), PayloadSA, 46, "SPI size 41 exceeds proposal (36 left)"},
		{"transform count too high", mod(set(47, 2)), PayloadSA, 47, "proposal declares 2 transforms, found 1"},
		{"transform count zero", mod(set(47, 0)), PayloadSA, 47, "proposal without transforms"},
		{"transform length past proposal", mod(put16(50, 40)), PayloadSA, 48, "transform length 40 exceeds proposal (36 left)"},
		{"transform length below 8", mod(put16(50, 7)), PayloadSA, 48, "transform length 7 is less than 8"},
		{"transform next payload", mod(set(48, 5)), PayloadSA, 48, "next payload 5 inside proposal"},
		{"attribute past end", mod(put16(80, 12)), PayloadSA, 80, "attribute 12 length 28800 exceeds transform (0 left)"},
		{"attribute truncated", mod(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[50:], 34) // transform ends 2 bytes into the last attribute
			return b
		}), PayloadSA, 80, "truncated attribute (2 bytes left in transform)"},
		{"chain ends early", mod(set(160, byte(PayloadVendorID))), PayloadVendorID, 180, "truncated generic header (0 bytes left)"},
		{"trailing bytes", mod(func(b []byte) []byte {
			b = append(b, 0, 0, 0, 0)
			binary.BigEndian.PutUint32(b[24:], uint32(len(b)))
			return b
		}), PayloadNone, 180, "4 bytes after the last payload"},
		{"proposal at top level", mod(set(16, byte(PayloadProposal))), PayloadProposal, 28, "outside an SA payload"},
	} {
		_, err := Decode(c.in)
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%s: err = %v, want *DecodeError", c.name, err)
			continue
		}
		if de.Payload != c.payload || de.Offset != c.offset || !strings.Contains(de.Reason, c.reason) {
			t.Errorf("%s: got %v (payload %s offset %d), want %s at %d containing %q", c.name, err, de.Payload, de.Offset, c.payload, c.offset, c.reason)
		}
	}
}

func TestDecodePayloadErrors(t *testing.T) {
	gen := func(np PayloadType, body ...byte) []byte {
		return append([]byte{byte(np), 0, byte((len(body) + 4) >> 8), byte(len(body) + 4)}, body...)
	}
	for _, c := range []struct {
		name    string
		first   PayloadType
		in      []byte
		payload PayloadType
		offset  int
		reason  string
	}{
		{"ID fixed part", PayloadID, gen(0, 1, 0, 0), PayloadID, 28, "shorter than the 4-byte ID fixed part"},
		{"ID_IPV4_ADDR length", PayloadID, gen(0, 1, 0, 0, 0, 1, 2, 3), PayloadID, 36, "ID_IPV4_ADDR data of 3 bytes, want 4"},
		{"ID subnet length", PayloadID, gen(0, 4, 0, 0, 0, 1, 2, 3, 4), PayloadID, 36, "want 8"},
		{"notify fixed part", PayloadNotify, gen(0, 0, 0, 0, 1, 1, 0, 0), PayloadNotify, 28, "shorter than the 8-byte"},
		{"notify SPI size", PayloadNotify, gen(0, 0, 0, 0, 1, 1, 16, 0x60, 0x02, 1, 2, 3), PayloadNotify, 37, "SPI size 16 exceeds payload (3 left)"},
		{"delete count", PayloadDelete, gen(0, 0, 0, 0, 1, 3, 4, 0, 2, 1, 2, 3, 4), PayloadDelete, 38, "2 SPIs of 4 bytes need 8 bytes, payload has 4"},
		{"delete trailing", PayloadDelete, gen(0, 0, 0, 0, 1, 3, 4, 0, 1, 1, 2, 3, 4, 5), PayloadDelete, 38, "1 SPIs of 4 bytes need 4 bytes, payload has 5"},
		{"delete SPI size 0", PayloadDelete, gen(0, 0, 0, 0, 1, 3, 0, 0, 1), PayloadDelete, 37, "SPI size 0 with 1 SPIs"},
		{"NAT-OA address", PayloadNATOA, gen(0, 1, 0, 0, 0, 1, 2, 3, 4, 5), PayloadNATOA, 32, "ID_IPV4_ADDR address of 5 bytes"},
		{"NAT-OA type", PayloadNATOADraft, gen(0, 2, 0, 0, 0, 'a'), PayloadNATOADraft, 32, "not allowed in NAT-OA"},
		{"cert empty", PayloadCert, gen(0), PayloadCert, 28, "shorter than the 1-byte certificate encoding"},
		{"second payload truncated", PayloadKE, append(gen(PayloadNonce, 1, 2), 0, 0), PayloadNonce, 34, "truncated generic header (2 bytes left)"},
		{"transform at top level", PayloadTransform, gen(0, 1, 2, 3, 4), PayloadTransform, 28, "outside an SA payload"},
	} {
		_, err := DecodePayloads(c.first, c.in, HeaderLen)
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%s: err = %v, want *DecodeError", c.name, err)
			continue
		}
		if de.Payload != c.payload || de.Offset != c.offset || !strings.Contains(de.Reason, c.reason) {
			t.Errorf("%s: got %v (payload %s offset %d), want %s at %d containing %q", c.name, err, de.Payload, de.Offset, c.payload, c.offset, c.reason)
		}
	}

	// Too many payloads.
	var chain []byte
	for i := 0; i < MaxPayloads+1; i++ {
		chain = append(chain, byte(PayloadVendorID), 0, 0, 4)
	}
	chain[len(chain)-4] = 0
	if _, err := DecodePayloads(PayloadVendorID, chain, 0); err == nil || !strings.Contains(err.Error(), "more than 64 payloads") {
		t.Errorf("65 payloads: %v", err)
	}
	if ps, err := DecodePayloads(PayloadVendorID, chain[4:], 0); err != nil || len(ps) != MaxPayloads {
		t.Errorf("64 payloads: %v", err)
	}
	// Padding after the last payload is allowed in a decrypted body.
	if ps, err := DecodePayloads(PayloadHash, append(gen(0, 1, 2), 0, 0, 0, 0, 0, 7), 28); err != nil || len(ps) != 1 {
		t.Errorf("padding: %v", err)
	}
	// Unknown payload types are kept.
	ps, err := DecodePayloads(PayloadType(77), gen(0, 'x'), 0)
	if err != nil || len(ps) != 1 || ps[0].(*Unknown).PType != 77 || string(ps[0].Body()) != "x" {
		t.Errorf("unknown payload: %v %v", ps, err)
	}
	// Reserved octets are ignored (lenient like strongSwan).
	b := gen(0, 1, 2)
	b[1] = 0xff
	if _, err := DecodePayloads(PayloadHash, b, 0); err != nil {
		t.Errorf("reserved octet: %v", err)
	}
}
