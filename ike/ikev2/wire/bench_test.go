package wire

import "testing"

// benchAuth returns the captured IKE_AUTH request of the CBC SA
// (reassembled from frames 3-5) sealed as one SK message, with the suite.
func benchAuth(b *testing.B, gcm bool) (*Suite, []byte, Header, []Payload) {
	b.Helper()
	var inner []Payload
	keys := capKeys(b)
	r := &Reassembler{}
	var h Header
	for _, cm := range loadCapture(b, "strongswan-ikev2.pcap")[2:5] {
		m, err := Decode(cm.b)
		if err != nil {
			b.Fatal(err)
		}
		o, err := capSuite(b, keys, m.Header).Open(cm.b)
		if err != nil {
			b.Fatal(err)
		}
		h = o.Header
		if _, err := r.Add(o); err != nil {
			b.Fatal(err)
		}
	}
	inner, err := r.Payloads()
	if err != nil {
		b.Fatal(err)
	}
	s := capSuite(b, keys, h)
	if gcm {
		s, err = NewSuite(Keys{Encr: EncrAESGCM16, EncrKey: keys["gcm SK_ei"]})
		if err != nil {
			b.Fatal(err)
		}
	}
	msg, err := s.Seal(h, inner, nil)
	if err != nil {
		b.Fatal(err)
	}
	return s, msg, h, inner
}

func BenchmarkDecodeIKESAInit(b *testing.B) {
	msg := loadCapture(b, "strongswan-ikev2.pcap")[0].b
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for i := 0; i < b.N; i++ {
		if _, err := Decode(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeIKESAInit(b *testing.B) {
	m, err := Decode(loadCapture(b, "strongswan-ikev2.pcap")[0].b)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := m.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeIKEAuth(b *testing.B) {
	for _, c := range []struct {
		name string
		gcm  bool
	}{{"AES-CBC-256-SHA256", false}, {"AES-GCM-16-128", true}} {
		b.Run(c.name, func(b *testing.B) {
			s, msg, _, _ := benchAuth(b, c.gcm)
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for i := 0; i < b.N; i++ {
				o, err := s.Open(msg)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := o.Payloads(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncodeIKEAuth(b *testing.B) {
	for _, c := range []struct {
		name string
		gcm  bool
	}{{"AES-CBC-256-SHA256", false}, {"AES-GCM-16-128", true}} {
		b.Run(c.name, func(b *testing.B) {
			s, _, h, inner := benchAuth(b, c.gcm)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := s.Seal(h, inner, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
