package wanem

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/natt"
)

func TestFilters(t *testing.T) {
	udp := func(sport, dport uint16, payload []byte) []byte {
		f := testFrame(leftIP, rightIP, len(payload))
		ip := f[hdrRoom:]
		binary.BigEndian.PutUint16(ip[20:], sport)
		binary.BigEndian.PutUint16(ip[22:], dport)
		copy(ip[28:], payload)
		return ip
	}
	ike500 := udp(500, 500, make([]byte, 40))
	ike4500 := udp(4500, 4500, append([]byte{0, 0, 0, 0}, make([]byte, 40)...))
	espUDP := udp(4500, 4500, append([]byte{0, 0, 1, 2}, make([]byte, 40)...))
	keepalive := udp(4500, 4500, []byte{0xff})
	espRaw := append([]byte(nil), ike500...)
	espRaw[9] = 50
	other := udp(5000, 6000, make([]byte, 10))
	for _, c := range []struct {
		name          string
		ip            []byte
		all, ike, esp bool
	}{
		{"IKE 500", ike500, true, true, false},
		{"IKE 4500", ike4500, true, true, false},
		{"ESP in UDP", espUDP, true, false, true},
		{"NAT keepalive", keepalive, true, false, false},
		{"raw ESP", espRaw, true, false, true},
		{"other UDP", other, true, false, false},
	} {
		if got := filtered(&Impairment{DropAll: true}, c.ip); got != c.all {
			t.Errorf("%s: DropAll %v", c.name, got)
		}
		if got := filtered(&Impairment{DropIKE: true}, c.ip); got != c.ike {
			t.Errorf("%s: DropIKE %v", c.name, got)
		}
		if got := filtered(&Impairment{DropESP: true}, c.ip); got != c.esp {
			t.Errorf("%s: DropESP %v", c.name, got)
		}
	}
}

// TestCorruptKeepsHeaders: the flipped bit is after the ESP SPI and
// sequence number (or the ISAKMP header), and a complete UDP checksum
// still verifies, so the receiver fails the ICV or HASH, not UDP.
func TestCorruptKeepsHeaders(t *testing.T) {
	for _, c := range []struct {
		name  string
		sport uint16
		lead  []byte
		skip  int // payload bytes that must not change
	}{
		{"ESP in UDP", 4500, []byte{0, 0, 1, 2, 0, 0, 0, 9}, 8},
		{"IKE on 4500", 4500, []byte{0, 0, 0, 0}, 4 + 28},
		{"IKE on 500", 500, nil, 28},
	} {
		d := newDirection("t", Impairment{Corrupt: 1}, 7, &Counters{})
		for i := 0; i < 200; i++ {
			f := testFrame(leftIP, rightIP, 100)
			ip := f[hdrRoom:]
			binary.BigEndian.PutUint16(ip[20:], c.sport)
			binary.BigEndian.PutUint16(ip[22:], c.sport)
			copy(ip[28:], c.lead)
			binary.BigEndian.PutUint16(ip[26:], 0)
			ck, _ := natt.Checksum(leftIP, rightIP, natt.ProtoUDP, ip[20:])
			binary.BigEndian.PutUint16(ip[26:], ck)
			orig := append([]byte(nil), ip...)
			if !corrupt(f, d) {
				t.Fatalf("%s: nothing corrupted", c.name)
			}
			diff := 0
			for j := range ip {
				if ip[j] != orig[j] {
					diff++
					if j < 28+c.skip && j != 26 && j != 27 {
						t.Fatalf("%s: byte %d changed (header or protected prefix)", c.name, j)
					}
				}
			}
			if diff == 0 || !natt.Verify(leftIP, rightIP, natt.ProtoUDP, ip[20:]) {
				t.Fatalf("%s: %d bytes changed, UDP checksum verifies: %v", c.name, diff, natt.Verify(leftIP, rightIP, natt.ProtoUDP, ip[20:]))
			}
		}
	}
}

func TestValidateConfig(t *testing.T) {
	for _, c := range []struct {
		im   Impairment
		want string
	}{
		{Impairment{Jitter: time.Millisecond, Distribution: "pareto"}, `unknown jitter distribution "pareto" (known: uniform, normal)`},
		{Impairment{Loss: 1.5}, "loss 1.5 is not a share"},
		{Impairment{Loss: 0.1, Burst: &GilbertElliott{P: 0.1, R: 0.5}}, "either loss or a burst"},
		{Impairment{MTU: 20}, "mtu 20 is not in 68..65535"},
		{Impairment{MTUMode: "frag"}, `unknown mtu mode "frag"`},
		{Impairment{Delay: -time.Second}, "must not be negative"},
		{Impairment{ReorderGap: 1000}, "reorder gap 1000"},
	} {
		c2 := Config{Paths: []Path{{Name: "x", A: leftIP, B: rightIP, BtoA: c.im}}}
		err := c2.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "x (10.2.0.2 -> 10.1.0.2)") {
			t.Errorf("%+v: %v, want %q", c.im, err, c.want)
		}
	}
	if err := (&Config{Paths: []Path{{A: leftIP, B: rightIP}, {A: leftIP, B: rightIP}}}).Validate(); err == nil {
		t.Error("two paths with the same addresses accepted")
	}
}
