package wire

import (
	"errors"
	"reflect"
	"testing"
)

// exercise calls the helpers on everything decoded; they must not panic.
func exercise(ps []Payload) {
	for _, p := range ps {
		_ = p.Type().String()
		switch p := p.(type) {
		case *SA:
			for _, pr := range p.Proposals {
				_ = pr.Protocol.String()
				for _, tr := range pr.Transforms {
					_ = tr.Name()
				}
			}
		case *ID:
			_, _ = p.Addr()
			_ = p.IDType.String()
		case *TS:
			for _, s := range p.Selectors {
				_ = s.String()
				_ = s.Prefixes()
			}
		case *Notify:
			_ = p.NotifyType.String()
			_, _ = p.Group()
			_, _ = p.HashAlgorithms()
		}
	}
}

func checkDecodeErr(t *testing.T, err error) {
	var de *DecodeError
	var ce *UnsupportedCriticalError
	var ve *VersionError
	if !errors.As(err, &de) && !errors.As(err, &ce) && !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a DecodeError, UnsupportedCriticalError or VersionError", err, err)
	}
}

func fuzzSuite(t testing.TB) *Suite {
	s, err := NewSuite(Keys{Encr: EncrAESCBC, Integ: IntegHMACSHA196, EncrKey: make([]byte, 16), IntegKey: make([]byte, 20)})
	if err != nil {
		t.Fatal(err)
	}
	s.Rand = zeroReader{} // deterministic IVs; never runs dry in a long fuzz run
	return s
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func FuzzDecode(f *testing.F) {
	for _, c := range []string{"strongswan-ikev2.pcap", "zeek-spicy-ipsec-client.pcap"} {
		for _, m := range loadCapture(f, c) {
			f.Add(m.b)
		}
	}
	m := &Message{Header: Header{Exchange: ExchangeIKESAInit}, Payloads: append(samplePayloads(), &Unknown{PType: 200, Data: []byte{1}})}
	if b, err := m.Encode(); err == nil {
		f.Add(b)
		f.Add(append([]byte{byte(m.Header.NextPayload)}, b[HeaderLen:]...))
	}
	suite := fuzzSuite(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			checkDecodeErr(t, err)
		} else {
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
		if o, err := suite.Open(data); err == nil {
			_, _ = o.Payloads()
			r := &Reassembler{}
			if _, err := r.Add(o); err == nil && r.Complete() {
				_, _ = r.Payloads()
			}
		} else if !errors.Is(err, ErrAuthentication) {
			checkDecodeErr(t, err)
		}
		// The same bytes as a decrypted chain whose first type is data[0].
		if len(data) == 0 {
			return
		}
		ps, err := DecodePayloads(PayloadType(data[0]), data[1:], HeaderLen)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		exercise(ps)
		first, b, err := AppendPayloads(nil, ps)
		if err != nil {
			t.Fatalf("re-encoding decoded payloads: %v", err)
		}
		ps2, err := DecodePayloads(first, b, HeaderLen)
		if err != nil || !reflect.DeepEqual(ps, ps2) {
			t.Fatalf("payload round trip: %v\n%#v\n%#v", err, ps, ps2)
		}
		sealed, err := suite.Seal(Header{Exchange: ExchangeInformational}, ps, nil)
		if err != nil {
			t.Fatalf("sealing decoded payloads: %v", err)
		}
		o, err := suite.Open(sealed)
		if err != nil {
			t.Fatalf("opening what Seal made: %v", err)
		}
		if ps3, err := o.Payloads(); err != nil || !reflect.DeepEqual(ps, ps3) {
			t.Fatalf("seal/open round trip: %v", err)
		}
	})
}
