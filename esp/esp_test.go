package esp

import (
	"bytes"
	"crypto/hmac"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"math"
	"net/netip"
	"testing"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/keymat"
)

type alg struct {
	name   string
	enc    uint8
	keyLen int // EncKey incl. GCM salt
	integ  uint16
}

func key(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i)*7
	}
	return b
}

var integs = []struct {
	name string
	id   uint16
}{{"sha1", isakmp.AuthHMACSHA1}, {"sha256", isakmp.AuthHMACSHA2256}, {"sha384", isakmp.AuthHMACSHA2384}, {"sha512", isakmp.AuthHMACSHA2512}}

func espAlgs() []alg {
	var as []alg
	for _, kl := range []int{16, 24, 32} {
		for _, i := range integs {
			as = append(as, alg{fmt.Sprintf("aes%dcbc-%s", kl*8, i.name), isakmp.ESPAESCBC, kl, i.id})
		}
	}
	as = append(as, alg{"aesgcm128", isakmp.ESPAESGCM16, 20, 0}, alg{"aesgcm256", isakmp.ESPAESGCM16, 36, 0})
	for _, i := range integs {
		as = append(as, alg{"null-" + i.name, isakmp.ESPNull, 0, i.id})
	}
	return as
}

func childSA(a alg, proto uint8, spi uint32) childsa.SA {
	c := childsa.SA{SPI: spi, Protocol: proto, Encryption: a.enc, Integrity: a.integ}
	if a.keyLen > 0 {
		c.EncKey = key(a.keyLen, 1)
	}
	if a.integ != 0 {
		i, _ := keymat.IntegrityByIKE(a.integ)
		c.IntegKey = key(i.KeyLen, 9)
	}
	return c
}

func pair(t testing.TB, c childsa.SA, mode childsa.Mode, window int) (out, in *SA) {
	t.Helper()
	out, err := New(Config{SA: c, Direction: Outbound, Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	in, err = New(Config{SA: c, Direction: Inbound, Mode: mode, ReplayWindow: window})
	if err != nil {
		t.Fatal(err)
	}
	return out, in
}

// ipv4Packet builds an IPv4 packet (UDP-like payload of n bytes).
func ipv4Packet(n int, proto uint8, tos byte) []byte {
	p := make([]byte, IPv4HeaderLen+n)
	p[0], p[1] = 0x45, tos
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	binary.BigEndian.PutUint16(p[4:], 0x1234)
	p[6] = 0x40
	p[8], p[9] = 63, proto
	copy(p[12:], []byte{10, 0, 0, 1, 10, 0, 1, 2})
	for i := range n {
		p[IPv4HeaderLen+i] = byte(i)
	}
	RewriteIPv4(p, proto, len(p))
	return p
}

var (
	outerSrc = netip.MustParseAddr("192.0.2.1")
	outerDst = netip.MustParseAddr("198.51.100.2")
)

// protectESP builds the full outer IPv4 packet for either mode.
func protectESP(t testing.TB, sa *SA, inner []byte) []byte {
	t.Helper()
	buf := make([]byte, 0, len(inner)+IPv4HeaderLen+sa.Overhead())
	var err error
	if sa.Mode() == childsa.ModeTunnel {
		buf = buf[:IPv4HeaderLen]
		if buf, err = sa.AppendESP(buf, inner, ProtoIPv4); err != nil {
			t.Fatal(err)
		}
		if err := PutOuterIPv4(buf, outerSrc, outerDst, 7, ProtoESP, len(buf), inner); err != nil {
			t.Fatal(err)
		}
		return buf
	}
	buf = append(buf, inner[:IPv4HeaderLen]...)
	if buf, err = sa.AppendESP(buf, inner[IPv4HeaderLen:], inner[9]); err != nil {
		t.Fatal(err)
	}
	if err := RewriteIPv4(buf[:IPv4HeaderLen], ProtoESP, len(buf)); err != nil {
		t.Fatal(err)
	}
	return buf
}

// openESP reverses protectESP.
func openESP(sa *SA, pkt []byte) ([]byte, error) {
	if sa.Mode() == childsa.ModeTunnel {
		inner, nh, err := sa.OpenESP(nil, pkt[IPv4HeaderLen:])
		if err == nil && nh != ProtoIPv4 {
			err = fmt.Errorf("next header %d", nh)
		}
		return inner, err
	}
	out := append([]byte(nil), pkt[:IPv4HeaderLen]...)
	out, nh, err := sa.OpenESP(out, pkt[IPv4HeaderLen:])
	if err != nil {
		return nil, err
	}
	RewriteIPv4(out[:IPv4HeaderLen], nh, len(out))
	return out, nil
}

var modes = []childsa.Mode{childsa.ModeTunnel, childsa.ModeTransport}

func TestESPRoundTrip(t *testing.T) {
	for _, a := range espAlgs() {
		for _, mode := range modes {
			t.Run(a.name+"/"+mode.String(), func(t *testing.T) {
				out, in := pair(t, childSA(a, isakmp.ProtoESP, 0x1000), mode, 0)
				for n := 0; n < 70; n++ {
					inner := ipv4Packet(n, 17, 0xb9)
					pkt := protectESP(t, out, inner)
					if Checksum(pkt[:IPv4HeaderLen]) != 0 || pkt[9] != ProtoESP || int(binary.BigEndian.Uint16(pkt[2:])) != len(pkt) {
						t.Fatalf("bad outer header % x", pkt[:20])
					}
					if mode == childsa.ModeTunnel && (pkt[1] != 0xb9 || pkt[6] != 0x40 || pkt[8] != 64) {
						t.Fatalf("outer header does not copy TOS/DF: % x", pkt[:20])
					}
					esp := pkt[IPv4HeaderLen:]
					if len(esp) != out.ESPLen(len(inner)) && mode == childsa.ModeTunnel {
						t.Fatalf("ESPLen %d, packet %d", out.ESPLen(len(inner)), len(esp))
					}
					got, err := openESP(in, pkt)
					if err != nil {
						t.Fatalf("n=%d: %v", n, err)
					}
					if !bytes.Equal(got, inner) {
						t.Fatalf("n=%d: got % x want % x", n, got, inner)
					}
					if binary.BigEndian.Uint32(esp[4:]) != uint32(n+1) {
						t.Fatalf("seq %d", binary.BigEndian.Uint32(esp[4:]))
					}
				}
				if s := in.Stats(); s.Packets != 70 {
					t.Errorf("stats %+v", s)
				}
			})
		}
	}
}

// TestESPLayout checks the trailer and ICV of a NULL/HMAC packet by hand.
func TestESPLayout(t *testing.T) {
	a := alg{"null-sha256", isakmp.ESPNull, 0, isakmp.AuthHMACSHA2256}
	c := childSA(a, isakmp.ProtoESP, 0xabcdef01)
	out, _ := pair(t, c, childsa.ModeTransport, 0)
	payload := []byte{1, 2, 3, 4, 5}
	pkt, err := out.AppendESP(nil, payload, 6)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0xab, 0xcd, 0xef, 0x01, 0, 0, 0, 1, 1, 2, 3, 4, 5, 1, 1, 6}
	if !bytes.Equal(pkt[:16], want) || len(pkt) != 16+16 {
		t.Fatalf("got % x", pkt)
	}
	m := hmac.New(keymatHash(t, a.integ), c.IntegKey)
	m.Write(pkt[:16])
	if !bytes.Equal(m.Sum(nil)[:16], pkt[16:]) {
		t.Error("ICV mismatch")
	}
}

func TestAHRoundTrip(t *testing.T) {
	for _, i := range integs {
		for _, mode := range modes {
			t.Run(i.name+"/"+mode.String(), func(t *testing.T) {
				a := alg{i.name, 0, 0, i.id}
				out, in := pair(t, childSA(a, isakmp.ProtoAH, 0x2000), mode, 0)
				for n := 0; n < 40; n++ {
					inner := ipv4Packet(n, 6, 0x03)
					src := inner
					if mode == childsa.ModeTunnel {
						src = make([]byte, IPv4HeaderLen, IPv4HeaderLen+len(inner))
						src = append(src, inner...)
						PutOuterIPv4(src, outerSrc, outerDst, 9, ProtoIPv4, len(src), inner)
					}
					pkt, err := out.ProtectAH(nil, src)
					if err != nil {
						t.Fatal(err)
					}
					if pkt[9] != ProtoAH || Checksum(pkt[:20]) != 0 || int(binary.BigEndian.Uint16(pkt[2:])) != len(pkt) {
						t.Fatalf("header % x", pkt[:20])
					}
					// Mutable fields may change in transit.
					pkt[8]--
					pkt[1] = 0xff
					RewriteIPv4(pkt[:20], ProtoAH, len(pkt))
					got, nh, err := in.VerifyAH(nil, pkt)
					if err != nil {
						t.Fatalf("n=%d: %v", n, err)
					}
					wantNH := byte(6)
					if mode == childsa.ModeTunnel {
						wantNH = ProtoIPv4
					} else {
						// transport: mutable fields as received
						inner = append([]byte(nil), inner...)
						inner[8]--
						inner[1] = 0xff
						RewriteIPv4(inner, 6, len(inner))
					}
					if nh != wantNH || !bytes.Equal(got, inner) {
						t.Fatalf("n=%d nh=%d\n got % x\nwant % x", n, nh, got, inner)
					}
				}
			})
		}
	}
}

func keymatHash(t *testing.T, id uint16) func() hash.Hash {
	i, err := keymat.IntegrityByIKE(id)
	if err != nil {
		t.Fatal(err)
	}
	return i.Hash.New
}

func TestESPDrops(t *testing.T) {
	for _, a := range []alg{
		{"aes128cbc-sha1", isakmp.ESPAESCBC, 16, isakmp.AuthHMACSHA1},
		{"aesgcm128", isakmp.ESPAESGCM16, 20, 0},
		{"null-sha512", isakmp.ESPNull, 0, isakmp.AuthHMACSHA2512},
	} {
		t.Run(a.name, func(t *testing.T) {
			out, in := pair(t, childSA(a, isakmp.ProtoESP, 0x3000), childsa.ModeTunnel, 64)
			inner := ipv4Packet(33, 17, 0)
			pkts := make([][]byte, 200)
			for i := range pkts {
				p, err := out.AppendESP(nil, inner, 4)
				if err != nil {
					t.Fatal(err)
				}
				pkts[i] = p
			}
			expect := func(p []byte, want DropReason) {
				t.Helper()
				got, _, err := in.OpenESP([]byte("keep"), p)
				if want == 0 {
					if err != nil || !bytes.Equal(got[4:], inner) {
						t.Fatalf("want accept, got %v", err)
					}
					return
				}
				if err != want || !errors.Is(err, want) || string(got) != "keep" {
					t.Fatalf("want %v, got %v (%q)", want, err, got)
				}
			}
			// flipped bit in the ICV / in the body
			bad := bytes.Clone(pkts[0])
			bad[len(bad)-1] ^= 1
			expect(bad, DropICV)
			bad = bytes.Clone(pkts[0])
			bad[len(bad)/2] ^= 0x10
			expect(bad, DropICV)
			bad = bytes.Clone(pkts[0])
			bad[7] ^= 0x02 // sequence number (covered by ICV / AAD)
			expect(bad, DropICV)
			expect(pkts[0], 0)
			expect(pkts[0], DropReplay) // replayed
			expect(pkts[150], 0)
			expect(pkts[50], DropReplay) // seq 51 is left of the 64-window ending at 151
			expect(pkts[100], 0)         // seq 101 is inside
			expect(pkts[100], DropReplay)
			// wrong SPI
			bad = bytes.Clone(pkts[10])
			bad[3] ^= 1
			expect(bad, DropNoSA)
			// truncated
			for _, n := range []int{0, 1, 7, 8, 12, len(pkts[199]) - 1} {
				expect(pkts[199][:n], DropMalformed)
			}
			if in.Drops(DropICV) != 3 || in.Drops(DropReplay) != 3 || in.Drops(DropNoSA) != 1 || in.Drops(DropMalformed) != 6 {
				t.Errorf("counters %+v", in.Stats())
			}
			expect(pkts[199], 0)
		})
	}
}

// TestESPBadPadding builds authentic packets whose padding bytes are wrong.
func TestESPBadPadding(t *testing.T) {
	for _, a := range []alg{
		{"aes256cbc-sha256", isakmp.ESPAESCBC, 32, isakmp.AuthHMACSHA2256},
		{"aesgcm256", isakmp.ESPAESGCM16, 36, 0},
		{"null-sha1", isakmp.ESPNull, 0, isakmp.AuthHMACSHA1},
	} {
		t.Run(a.name, func(t *testing.T) {
			c := childSA(a, isakmp.ProtoESP, 0x4000)
			_, in := pair(t, c, childsa.ModeTransport, 0)
			for _, tc := range []struct {
				name string
				tail []byte // padding, pad length, next header
				want DropReason
			}{
				{"good", []byte{1, 2, 2, 6}, 0},
				{"wrong-byte", []byte{1, 3, 2, 6}, DropPadding},
				{"zeros", []byte{0, 0, 2, 6}, DropPadding},
				{"too-long", []byte{1, 2, 200, 6}, DropPadding},
			} {
				payload := make([]byte, 44) // 44+4 = 48: a multiple of 16 and 4
				pt := append(payload, tc.tail...)
				pkt := sealRaw(t, c, 7, pt)
				got, nh, err := in.OpenESP(nil, pkt)
				if tc.want == 0 {
					if err != nil || nh != 6 || len(got) != 44 {
						t.Fatalf("%s: %v %d %d", tc.name, err, nh, len(got))
					}
				} else if err != tc.want {
					t.Fatalf("%s: got %v want %v", tc.name, err, tc.want)
				}
				in.replay = mustWindow(t) // reuse seq 7
			}
			if in.Drops(DropPadding) != 3 {
				t.Errorf("padding drops %d", in.Drops(DropPadding))
			}
		})
	}
}

func mustWindow(t *testing.T) *replayWindow {
	w, err := newReplayWindow(64)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// sealRaw produces an ESP packet whose plaintext (payload+trailer) is pt,
// computing encryption and ICV independently of AppendESP's trailer logic.
func sealRaw(t *testing.T, c childsa.SA, seq uint32, pt []byte) []byte {
	sa, err := New(Config{SA: c, Direction: Outbound, Mode: childsa.ModeTransport})
	if err != nil {
		t.Fatal(err)
	}
	hdr := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, c.SPI), seq)
	switch sa.enc {
	case encCBC:
		iv := bytes.Repeat([]byte{0x5a}, 16)
		ct := make([]byte, len(pt))
		sa.cbcEnc.SetIV(iv)
		sa.cbcEnc.CryptBlocks(ct, pt)
		pkt := append(append(hdr, iv...), ct...)
		m := hmac.New(keymatHash(t, c.Integrity), c.IntegKey)
		m.Write(pkt)
		return append(pkt, m.Sum(nil)[:sa.icvLen]...)
	case encGCM:
		iv := []byte{1, 2, 3, 4, 5, 6, 7, 8}
		nonce := append(append([]byte(nil), sa.salt[:]...), iv...)
		return sa.aead.Seal(append(hdr, iv...), nonce, pt, hdr)
	default:
		pkt := append(hdr, pt...)
		m := hmac.New(keymatHash(t, c.Integrity), c.IntegKey)
		m.Write(pkt)
		return append(pkt, m.Sum(nil)[:sa.icvLen]...)
	}
}

func TestAHDrops(t *testing.T) {
	a := alg{"sha256", 0, 0, isakmp.AuthHMACSHA2256}
	c := childSA(a, isakmp.ProtoAH, 0x5000)
	out, in := pair(t, c, childsa.ModeTransport, 0)
	p1, err := out.ProtectAH(nil, ipv4Packet(20, 17, 0))
	if err != nil {
		t.Fatal(err)
	}
	expect := func(p []byte, want error) {
		t.Helper()
		_, _, err := in.VerifyAH(nil, p)
		if err != want {
			t.Fatalf("got %v want %v", err, want)
		}
	}
	bad := bytes.Clone(p1)
	bad[IPv4HeaderLen+12] ^= 1 // ICV
	expect(bad, DropICV)
	bad = bytes.Clone(p1)
	bad[len(bad)-1] ^= 1 // payload
	expect(bad, DropICV)
	bad = bytes.Clone(p1)
	bad[15] ^= 1 // source address is immutable
	expect(bad, DropICV)
	bad = bytes.Clone(p1)
	bad[IPv4HeaderLen+4] ^= 1
	expect(bad, DropNoSA)
	expect(p1[:30], DropMalformed)
	expect(p1, nil)
	expect(p1, DropReplay)

	// IPv4 options: refused outbound and inbound.
	opt := make([]byte, 24+8)
	copy(opt, ipv4Packet(0, 17, 0)[:20])
	opt[0] = 0x46
	opt[20] = 1 // NOP options
	opt[21], opt[22], opt[23] = 1, 1, 0
	RewriteIPv4(opt, 17, len(opt))
	if _, err := out.ProtectAH(nil, opt); err != ErrIPv4Options || !errors.Is(err, DropMalformed) {
		t.Errorf("options outbound: %v", err)
	}
	RewriteIPv4(opt, ProtoAH, len(opt))
	if _, _, err := in.VerifyAH(nil, opt); err != ErrIPv4Options {
		t.Errorf("options inbound: %v", err)
	}
	// Fragments are refused.
	frag := ipv4Packet(20, 17, 0)
	frag[6] = 0x20
	if _, err := out.ProtectAH(nil, frag); err == nil {
		t.Error("fragment accepted")
	}
	if in.Drops(DropMalformed) != 2 || in.Drops(DropICV) != 3 {
		t.Errorf("counters %+v", in.Stats())
	}
}

func TestSequenceLimits(t *testing.T) {
	a := alg{"aesgcm128", isakmp.ESPAESGCM16, 20, 0}
	c := childSA(a, isakmp.ProtoESP, 0x6000)
	sa, err := New(Config{SA: c, Direction: Outbound, Mode: childsa.ModeTunnel, LastSeq: DefaultSoftLimit - 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sa.AppendESP(nil, []byte{1}, 4); err != nil || sa.SoftLimitReached() {
		t.Fatalf("soft limit too early: %v", err)
	}
	if _, err := sa.AppendESP(nil, []byte{1}, 4); err != nil || !sa.SoftLimitReached() {
		t.Fatalf("soft limit: %v %v", err, sa.SoftLimitReached())
	}
	sa, _ = New(Config{SA: c, Direction: Outbound, Mode: childsa.ModeTunnel, LastSeq: math.MaxUint32 - 1})
	p, err := sa.AppendESP(nil, []byte{1}, 4)
	if err != nil || binary.BigEndian.Uint32(p[4:]) != math.MaxUint32 {
		t.Fatalf("last seq: %v", err)
	}
	for range 3 {
		if _, err := sa.AppendESP(nil, []byte{1}, 4); err != ErrSeqExhausted {
			t.Fatalf("after 2^32-1: %v", err)
		}
	}
	if sa.LastSeq() != math.MaxUint32 {
		t.Errorf("LastSeq %d", sa.LastSeq())
	}
	ah, _ := New(Config{SA: childSA(alg{"", 0, 0, 2}, isakmp.ProtoAH, 0x6001), Direction: Outbound, Mode: childsa.ModeTransport, LastSeq: math.MaxUint32})
	if _, err := ah.ProtectAH(nil, ipv4Packet(1, 17, 0)); err != ErrSeqExhausted {
		t.Errorf("AH after 2^32-1: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	good := childSA(alg{"", isakmp.ESPAESCBC, 16, isakmp.AuthHMACSHA1}, isakmp.ProtoESP, 0x7000)
	mod := func(f func(c *childsa.SA, cfg *Config)) Config {
		cfg := Config{SA: good, Direction: Inbound}
		cfg.SA.EncKey = bytes.Clone(good.EncKey)
		f(&cfg.SA, &cfg)
		return cfg
	}
	for name, cfg := range map[string]Config{
		"spi":         mod(func(c *childsa.SA, _ *Config) { c.SPI = 255 }),
		"cbc-key":     mod(func(c *childsa.SA, _ *Config) { c.EncKey = c.EncKey[:15] }),
		"gcm-key":     mod(func(c *childsa.SA, _ *Config) { c.Encryption, c.Integrity, c.IntegKey = isakmp.ESPAESGCM16, 0, nil }),
		"gcm-integ":   mod(func(c *childsa.SA, _ *Config) { c.Encryption, c.EncKey = isakmp.ESPAESGCM16, key(20, 0) }),
		"no-integ":    mod(func(c *childsa.SA, _ *Config) { c.Integrity, c.IntegKey = 0, nil }),
		"integ-key":   mod(func(c *childsa.SA, _ *Config) { c.IntegKey = c.IntegKey[:19] }),
		"md5":         mod(func(c *childsa.SA, _ *Config) { c.Integrity = isakmp.AuthHMACMD5 }),
		"3des":        mod(func(c *childsa.SA, _ *Config) { c.Encryption = 3 }),
		"proto":       mod(func(c *childsa.SA, _ *Config) { c.Protocol = 4 }),
		"ah-enc":      mod(func(c *childsa.SA, _ *Config) { c.Protocol = isakmp.ProtoAH }),
		"null-key":    mod(func(c *childsa.SA, _ *Config) { c.Encryption = isakmp.ESPNull }),
		"window-100":  mod(func(_ *childsa.SA, cfg *Config) { cfg.ReplayWindow = 100 }),
		"window-4096": mod(func(_ *childsa.SA, cfg *Config) { cfg.ReplayWindow = 4096 }),
		"window-32":   mod(func(_ *childsa.SA, cfg *Config) { cfg.ReplayWindow = 32 }),
		"mode":        mod(func(_ *childsa.SA, cfg *Config) { cfg.Mode = 7 }),
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	cfg := mod(func(c *childsa.SA, cfg *Config) { c.Integrity, c.IntegKey = 0, nil; cfg.AllowEncryptionOnly = true })
	if _, err := New(cfg); err != nil {
		t.Errorf("encryption-only with AllowEncryptionOnly: %v", err)
	}
	// Wrong direction / protocol.
	out, in := pair(t, good, childsa.ModeTunnel, 0)
	if _, err := in.AppendESP(nil, nil, 4); err != ErrWrongDirection {
		t.Error(err)
	}
	if _, _, err := out.OpenESP(nil, nil); err != ErrWrongDirection {
		t.Error(err)
	}
	if _, err := out.ProtectAH(nil, nil); err != ErrWrongProtocol {
		t.Error(err)
	}
}

func TestDropReasonNames(t *testing.T) {
	want := map[DropReason]string{DropMalformed: "malformed", DropNoSA: "no-sa", DropICV: "icv", DropReplay: "replay", DropPadding: "padding", 0: "unknown", 99: "unknown"}
	for r, s := range want {
		if r.String() != s {
			t.Errorf("%d: %q", r, r.String())
		}
	}
	if DropICV.Error() != "esp: packet dropped: icv" {
		t.Error(DropICV.Error())
	}
}

func TestChecksumAndECN(t *testing.T) {
	// RFC 3602 case 5 ESP IP header (checksum f9a5).
	h := []byte{0x45, 0, 0, 0x7c, 0x08, 0xf2, 0, 0, 0x40, 0x32, 0xf9, 0xa5, 192, 168, 123, 3, 192, 168, 123, 100}
	if Checksum(h) != 0 {
		t.Error("checksum")
	}
	inner := ipv4Packet(8, 17, 0xb8|ecnCE)
	var hdr [20]byte
	PutOuterIPv4(hdr[:], outerSrc, outerDst, 1, ProtoESP, 100, inner)
	if hdr[1] != 0xb8|ecnCE {
		t.Errorf("outer TOS %#x (RFC 6040 normal mode copies CE)", hdr[1])
	}
	v6 := make([]byte, 40)
	v6[0], v6[1] = 0x6b, 0x90 // traffic class 0xb9
	PutOuterIPv4(hdr[:], outerSrc, outerDst, 1, ProtoESP, 100, v6)
	if hdr[1] != 0xb9 || hdr[6] != 0 {
		t.Errorf("outer from IPv6: % x", hdr)
	}
	for _, tc := range []struct{ outer, in, want byte }{
		{ecnNotECT, ecnECT0, ecnECT0}, {ecnECT0, ecnNotECT, ecnNotECT}, {ecnCE, ecnECT0, ecnCE},
		{ecnCE, ecnECT1, ecnCE}, {ecnECT1, ecnECT0, ecnECT1}, {ecnECT0, ecnECT1, ecnECT1}, {ecnCE, ecnCE, ecnCE},
	} {
		p := ipv4Packet(4, 17, 0xb8|tc.in)
		if !DecapECN(tc.outer, p) || p[1] != 0xb8|tc.want || Checksum(p[:20]) != 0 {
			t.Errorf("%+v: %#x", tc, p[1])
		}
	}
	if DecapECN(ecnCE, ipv4Packet(4, 17, 0)) {
		t.Error("CE over Not-ECT not dropped")
	}
}

// TestZeroAllocs checks that the hot path allocates nothing.
func TestZeroAllocs(t *testing.T) {
	for _, a := range espAlgs() {
		out, in := pair(t, childSA(a, isakmp.ProtoESP, 0x8000), childsa.ModeTunnel, 0)
		inner := ipv4Packet(1000, 17, 0)
		buf := make([]byte, 0, 2048)
		dec := make([]byte, 0, 2048)
		n := testing.AllocsPerRun(200, func() {
			p, err := out.AppendESP(buf, inner, 4)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := in.OpenESP(dec, p); err != nil {
				t.Fatal(err)
			}
		})
		if n != 0 {
			t.Errorf("%s: %v allocs per packet", a.name, n)
		}
	}
	out, in := pair(t, childSA(alg{"", 0, 0, isakmp.AuthHMACSHA2512}, isakmp.ProtoAH, 0x8001), childsa.ModeTransport, 0)
	pkt := ipv4Packet(1000, 17, 0)
	buf := make([]byte, 0, 2048)
	dec := make([]byte, 0, 2048)
	n := testing.AllocsPerRun(200, func() {
		p, err := out.ProtectAH(buf, pkt)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := in.VerifyAH(dec, p); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("AH: %v allocs per packet", n)
	}
}
