package isakmp

import (
	"errors"
	"reflect"
	"testing"
)

// exercise calls the formatting helpers on everything decoded; they must not
// panic either.
func exercise(ps []Payload) {
	for _, p := range ps {
		_ = Describe(p)
		_ = p.Body()
		if id, ok := p.(*ID); ok {
			_ = id.String()
			_, _ = id.Prefix()
		}
		if sa, ok := p.(*SA); ok {
			for _, pr := range sa.Proposals {
				for _, tr := range pr.Transforms {
					for _, a := range tr.Attributes {
						_, _ = a.Uint()
					}
				}
			}
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, n := range []int{1, 2, 3, 4, 5, 7, 28} {
		f.Add(loadFrame(f, n))
	}
	m := &Message{Header: Header{Exchange: ExchangeAggressive}, Payloads: samplePayloads()}
	if b, err := m.Encode(); err == nil {
		f.Add(b)
		f.Add(append([]byte{byte(m.Header.NextPayload)}, b[HeaderLen:]...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode error %v is not a *DecodeError", err)
			}
		} else {
			_ = m.Header.String()
			exercise(m.Payloads)
			b, err := m.Encode()
			if err != nil {
				t.Fatalf("re-encoding a decoded message: %v", err)
			}
			m2, err := Decode(b)
			if err != nil {
				t.Fatalf("decoding a re-encoded message: %v\n%x", err, b)
			}
			if !reflect.DeepEqual(m, m2) {
				t.Fatalf("round trip differs:\n%#v\n%#v", m, m2)
			}
		}

		// The same bytes as a decrypted body whose first payload type is data[0].
		if len(data) == 0 {
			return
		}
		ps, err := DecodePayloads(PayloadType(data[0]), data[1:], HeaderLen)
		if err != nil {
			return
		}
		exercise(ps)
		first, b, err := EncodePayloads(ps)
		if err != nil {
			t.Fatalf("re-encoding decoded payloads: %v", err)
		}
		ps2, err := DecodePayloads(first, b, HeaderLen)
		if err != nil {
			t.Fatalf("decoding re-encoded payloads: %v\n%x", err, b)
		}
		if !reflect.DeepEqual(ps, ps2) {
			t.Fatalf("payload round trip differs:\n%#v\n%#v", ps, ps2)
		}
	})
}
