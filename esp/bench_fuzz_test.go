package esp

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// BenchmarkESP measures encapsulation plus decapsulation of one packet.
func BenchmarkESP(b *testing.B) {
	for _, a := range []alg{
		{"aesgcm128", isakmp.ESPAESGCM16, 20, 0},
		{"aes256cbc-sha256", isakmp.ESPAESCBC, 32, isakmp.AuthHMACSHA2256},
	} {
		for _, size := range []int{64, 512, 1400} {
			b.Run(fmt.Sprintf("%s/%d", a.name, size), func(b *testing.B) {
				c := childSA(a, isakmp.ProtoESP, 0x9000)
				out, err := New(Config{SA: c, Direction: Outbound, Mode: childsa.ModeTunnel})
				if err != nil {
					b.Fatal(err)
				}
				// Inbound without replay protection would be unrealistic;
				// sequence numbers increase so the window always accepts.
				in, err := New(Config{SA: c, Direction: Inbound, Mode: childsa.ModeTunnel})
				if err != nil {
					b.Fatal(err)
				}
				inner := ipv4Packet(size-IPv4HeaderLen, 17, 0)
				buf := make([]byte, 0, 2048)
				dec := make([]byte, 0, 2048)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					p, err := out.AppendESP(buf, inner, ProtoIPv4)
					if err != nil {
						b.Fatal(err)
					}
					if _, _, err := in.OpenESP(dec, p); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// FuzzOpenESP feeds arbitrary bytes to inbound SAs of every kind: no panic,
// and anything accepted must be a packet the fuzzer could not have forged
// (only the seed packets built with the key are accepted).
func FuzzOpenESP(f *testing.F) {
	algs := []alg{
		{"cbc", isakmp.ESPAESCBC, 16, isakmp.AuthHMACSHA1},
		{"gcm", isakmp.ESPAESGCM16, 20, 0},
		{"null", isakmp.ESPNull, 0, isakmp.AuthHMACSHA2256},
		{"cbc-noint", isakmp.ESPAESCBC, 16, 0},
	}
	var ins []*SA
	for i, a := range algs {
		c := childSA(a, isakmp.ProtoESP, 0x100)
		out, err := New(Config{SA: c, Direction: Outbound, Mode: childsa.ModeTunnel, AllowEncryptionOnly: true})
		if err != nil {
			f.Fatal(err)
		}
		in, err := New(Config{SA: c, Direction: Inbound, Mode: childsa.ModeTunnel, AllowEncryptionOnly: true, ReplayWindow: 64})
		if err != nil {
			f.Fatal(err)
		}
		ins = append(ins, in)
		for _, n := range []int{0, 1, 20, 100} {
			p, _ := out.AppendESP(nil, ipv4Packet(n, 17, 0)[:n], 4)
			f.Add(uint8(i), p)
		}
	}
	f.Add(uint8(0), []byte{})
	f.Add(uint8(1), []byte{0, 0, 1, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, which uint8, pkt []byte) {
		in := ins[int(which)%len(ins)]
		dst := make([]byte, 3, 3+len(pkt))
		out, nh, err := in.OpenESP(dst, pkt)
		if err != nil {
			if len(out) != 3 {
				t.Fatalf("dst changed on error")
			}
			if _, ok := err.(DropReason); !ok {
				t.Fatalf("error is not a DropReason: %v", err)
			}
			return
		}
		if len(out) < 3 || len(out)-3 > len(pkt) {
			t.Fatalf("bad output length %d nh %d", len(out), nh)
		}
	})
}

// TestReplayWindowModel compares the ring bitmap with a map-based model of
// RFC 4303 section 3.4.3 on random sequences.
func TestReplayWindowModel(t *testing.T) {
	for _, size := range []int{64, 128, 1024, 2048} {
		w, err := newReplayWindow(size)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[uint32]bool{}
		var top uint32
		r := rand.New(rand.NewPCG(uint64(size), 1))
		for i := 0; i < 200000; i++ {
			var s uint32
			switch r.IntN(4) {
			case 0:
				s = top + uint32(r.IntN(3*size)) + 1
			case 1:
				s = top + uint32(r.IntN(4))
			default:
				s = top - uint32(r.IntN(size+10))
			}
			want := s != 0 && !seen[s] && (s > top || uint64(top)-uint64(s) < uint64(size))
			if got := w.check(s); got != want {
				t.Fatalf("size %d step %d: seq %d top %d: check %v want %v", size, i, s, top, got, want)
			}
			if want && r.IntN(10) != 0 { // sometimes the ICV "fails": no update
				w.update(s)
				seen[s] = true
				if s > top {
					top = s
				}
			}
		}
	}
	if _, err := newReplayWindow(0); err == nil {
		t.Error("window 0 accepted")
	}
}
