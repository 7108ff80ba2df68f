package exchange

import (
	"bytes"
	"testing"
)

// TestSimultaneousRekey: the exchange holding the lowest of the four
// nonces made the redundant SA (sections 2.8.1, 2.8.2).
func TestSimultaneousRekey(t *testing.T) {
	n := func(b ...byte) []byte { return append(bytes.Repeat([]byte{0x80}, 15), b...) }
	cases := []struct {
		name        string
		ours, their Nonces
		want        Survivor
		fail        bool
	}{
		{"our Ni lowest", Nonces{n(1), n(9)}, Nonces{n(5), n(6)}, TheirsSurvives, false},
		{"our Nr lowest", Nonces{n(9), n(1)}, Nonces{n(5), n(6)}, TheirsSurvives, false},
		{"their Ni lowest", Nonces{n(5), n(6)}, Nonces{n(1), n(9)}, OursSurvives, false},
		{"their Nr lowest", Nonces{n(5), n(6)}, Nonces{n(9), n(1)}, OursSurvives, false},
		{"first byte decides", Nonces{append([]byte{0x00}, n(0xff)...), n(0)}, Nonces{append([]byte{0x01}, n(0)...), n(0)}, TheirsSurvives, false},
		{"unsigned comparison", Nonces{append([]byte{0xff}, n(0)...), n(0x90)}, Nonces{append([]byte{0x7f}, n(0)...), n(0x90)}, OursSurvives, false},
		{"a prefix is lower", Nonces{n(1)[:15], n(9)}, Nonces{n(1), n(9)}, TheirsSurvives, false},
		{"shared lowest nonce", Nonces{n(1), n(9)}, Nonces{n(1), n(8)}, 0, true},
		{"empty nonce", Nonces{nil, n(9)}, Nonces{n(1), n(8)}, 0, true},
	}
	for _, c := range cases {
		got, err := SimultaneousRekey(c.ours, c.their)
		if (err != nil) != c.fail {
			t.Fatalf("%s: %v", c.name, err)
		}
		if c.fail {
			continue
		}
		if got != c.want {
			t.Errorf("%s: %s survives, want %s", c.name, got, c.want)
		}
		// the other end, with the roles swapped, agrees on the same SA
		other, err := SimultaneousRekey(c.their, c.ours)
		if err != nil || other == got {
			t.Errorf("%s: the peer's view %s (%v) does not mirror ours %s", c.name, other, err, got)
		}
		if got.WeDelete() == other.WeDelete() {
			t.Errorf("%s: both or neither end delete", c.name)
		}
	}
}
