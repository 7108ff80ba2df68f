package wire

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func suites(t testing.TB) []*Suite {
	var out []*Suite
	for _, s := range tsharkSuites {
		su, err := NewSuite(s.keys)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, su)
	}
	return out
}

// TestSealOpen: every suite round-trips; every single flipped bit of the
// message (header, SK header, IV, ciphertext, ICV) fails the integrity
// check; Open returns IV and padding so that Seal rebuilds the same bytes.
func TestSealOpen(t *testing.T) {
	h := Header{SPIi: [8]byte{1}, SPIr: [8]byte{2}, Exchange: ExchangeIKEAuth, Flags: FlagInitiator, MessageID: 1}
	for i, s := range suites(t) {
		b, err := s.Seal(h, authPayloads(), nil)
		if err != nil {
			t.Fatal(err)
		}
		o, err := s.Open(b)
		if err != nil {
			t.Fatalf("suite %d: %v", i, err)
		}
		ps, err := o.Payloads()
		if err != nil || !reflect.DeepEqual(ps, authPayloads()) {
			t.Fatalf("suite %d: payloads differ (%v)", i, err)
		}
		if len(o.IV) != s.IVLen() || (len(o.Plain)+len(o.Padding)+1)%s.BlockSize() != 0 {
			t.Errorf("suite %d: IV %d, %d+%d+1 bytes", i, len(o.IV), len(o.Plain), len(o.Padding))
		}
		re, err := s.Seal(o.Header, ps, &SealOptions{IV: o.IV, Padding: o.Padding})
		if err != nil || !bytes.Equal(re, b) {
			t.Errorf("suite %d: resealed differs", i)
		}
		for j := 0; j < len(b); j++ {
			if j >= 24 && j < 28 { // Length: a decode error instead
				continue
			}
			bad := append([]byte(nil), b...)
			bad[j] ^= 0x01
			if _, err := s.Open(bad); err == nil {
				t.Fatalf("suite %d: flipped bit in byte %d accepted", i, j)
			} else if j >= HeaderLen+GenericLen && !errors.Is(err, ErrAuthentication) {
				t.Fatalf("suite %d: flipped bit in byte %d: %v", i, j, err)
			}
		}
	}
}

func TestSealPadding(t *testing.T) {
	s := suites(t)[1] // AES-CBC
	h := Header{Exchange: ExchangeInformational}
	// Empty body: Pad Length alone, 15 bytes of padding to one block.
	b, err := s.Seal(h, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	o, err := s.Open(b)
	if err != nil || len(o.Padding) != 15 || len(o.Plain) != 0 || o.First != PayloadNone {
		t.Fatalf("empty: %v %+v", err, o)
	}
	// Any aligned padding up to 255 bytes (section 3.14), content kept.
	pad := bytes.Repeat([]byte{0xee}, 255)
	b, err = s.Seal(h, nil, &SealOptions{Padding: pad})
	if err != nil {
		t.Fatal(err)
	}
	if o, err = s.Open(b); err != nil || !bytes.Equal(o.Padding, pad) {
		t.Fatalf("255 bytes of padding: %v", err)
	}
	if _, err := s.Seal(h, nil, &SealOptions{Padding: make([]byte, 14)}); err == nil {
		t.Error("unaligned padding accepted")
	}
	if _, err := s.Seal(h, nil, &SealOptions{IV: make([]byte, 8)}); err == nil {
		t.Error("short IV accepted")
	}
	// GCM: a Pad Length beyond the plaintext is a DecodeError.
	g := suites(t)[4]
	key := tsharkSuites[4].keys.EncrKey
	b, _ = g.Seal(h, nil, &SealOptions{IV: make([]byte, 8)})
	block, _ := aes.NewCipher(key[:16])
	aead, _ := cipher.NewGCM(block)
	nonce := append(append([]byte(nil), key[16:]...), make([]byte, 8)...)
	ivStart := HeaderLen + GenericLen
	forged := aead.Seal(append([]byte(nil), b[:ivStart+8]...), nonce, []byte{5}, b[:ivStart])
	var de *DecodeError
	if _, err := g.Open(forged); !errors.As(err, &de) || de.Payload != PayloadSK || !strings.Contains(de.Reason, "pad length 5") {
		t.Errorf("pad length beyond plaintext: %v", err)
	}
	// Too short to hold IV, one block and ICV.
	short := rawMsg(PayloadSK, gen(PayloadNone, false, make([]byte, 16+16+15)))
	if _, err := s.Open(short); !errors.As(err, &de) || !strings.Contains(de.Reason, "do not hold") {
		t.Errorf("short SK: %v", err)
	}
	if _, err := s.Open(rawMsg(PayloadNonce, gen(PayloadNone, false, nonce16))); !errors.As(err, &de) {
		t.Errorf("no SK: %v", err)
	}
}

func TestNewSuiteErrors(t *testing.T) {
	for _, k := range []Keys{
		{Encr: EncrAESCBC, Integ: IntegHMACSHA2256128, EncrKey: make([]byte, 15), IntegKey: make([]byte, 32)},
		{Encr: EncrAESCBC, Integ: IntegHMACSHA2256128, EncrKey: make([]byte, 16), IntegKey: make([]byte, 16)},
		{Encr: EncrAESCBC, Integ: IntegNone, EncrKey: make([]byte, 16)},
		{Encr: EncrAESGCM16, EncrKey: make([]byte, 16)},
		{Encr: EncrAESGCM16, Integ: IntegHMACSHA196, EncrKey: make([]byte, 20), IntegKey: make([]byte, 20)},
		{Encr: EncrAESGCM8, EncrKey: make([]byte, 20)},
	} {
		if _, err := NewSuite(k); err == nil {
			t.Errorf("NewSuite(%s/%s, %d/%d key bytes) accepted", k.Encr, k.Integ, len(k.EncrKey), len(k.IntegKey))
		}
	}
}

// TestFragments: Split honours the size, fragments arrive out of order and
// duplicated, and the reassembled payloads equal the original.
func TestFragments(t *testing.T) {
	h := Header{SPIi: [8]byte{1}, SPIr: [8]byte{2}, Exchange: ExchangeIKEAuth, Flags: FlagInitiator, MessageID: 1}
	for i, s := range suites(t) {
		frags, err := s.Split(h, authPayloads(), 150)
		if err != nil {
			t.Fatal(err)
		}
		var opened []*Opened
		for _, f := range frags {
			if len(f) > 150 {
				t.Fatalf("suite %d: fragment of %d bytes", i, len(f))
			}
			o, err := s.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			if int(o.Total) != len(frags) {
				t.Fatalf("total %d, %d fragments", o.Total, len(frags))
			}
			opened = append(opened, o)
		}
		r := &Reassembler{}
		order := append(opened[1:], opened[0], opened[1])
		for j, o := range order {
			done, err := r.Add(o)
			if err != nil {
				t.Fatal(err)
			}
			if done != (j >= len(opened)-1) {
				t.Fatalf("suite %d: done=%v after %d fragments", i, done, j+1)
			}
		}
		ps, err := r.Payloads()
		if err != nil || !reflect.DeepEqual(ps, authPayloads()) {
			t.Fatalf("suite %d: reassembled payloads differ (%v)", i, err)
		}
	}
	if _, err := suites(t)[0].Split(h, authPayloads(), 60); err == nil {
		t.Error("Split with no room accepted")
	}
}

func TestReassemblerBounds(t *testing.T) {
	h := Header{MessageID: 7}
	frag := func(n, total uint16, first PayloadType, size int) *Opened {
		return &Opened{Header: h, Number: n, Total: total, First: first, Plain: make([]byte, size)}
	}
	r := &Reassembler{MaxFragments: 4, MaxBytes: 100}
	if _, err := r.Add(frag(1, 5, PayloadIDi, 10)); err == nil || !strings.Contains(err.Error(), "5 fragments") {
		t.Errorf("too many fragments: %v", err)
	}
	if _, err := r.Add(frag(1, 3, PayloadIDi, 60)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Add(frag(2, 3, PayloadNone, 41)); err == nil || !strings.Contains(err.Error(), "exceed 100 bytes") {
		t.Errorf("too many bytes: %v", err)
	}
	if _, err := r.Add(frag(2, 2, PayloadNone, 1)); !errors.Is(err, ErrStaleFragment) {
		t.Errorf("smaller total: %v", err)
	}
	other := frag(2, 3, PayloadNone, 1)
	other.Header.MessageID = 8
	if _, err := r.Add(other); err == nil {
		t.Error("fragment of another message accepted")
	}
	// A larger total starts over: fragment 1 of the old set is gone.
	if _, err := r.Add(frag(4, 4, PayloadNone, 1)); err != nil {
		t.Fatal(err)
	}
	for _, n := range []uint16{2, 3} {
		if done, err := r.Add(frag(n, 4, PayloadNone, 1)); err != nil || done {
			t.Fatalf("fragment %d: %v %v", n, done, err)
		}
	}
	if _, err := r.Payloads(); err == nil {
		t.Error("incomplete message decoded")
	}
	if _, err := r.Add(frag(1, 4, PayloadNone, 1)); err == nil {
		t.Error("fragment 1 without a first payload accepted")
	}
	if _, err := r.Add(&Opened{Header: h}); err == nil {
		t.Error("SK message accepted as a fragment")
	}
}
