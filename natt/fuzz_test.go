package natt

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

func addrFromUint(u uint32) netip.Addr {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], u)
	return netip.AddrFrom4(a)
}

// sameZero reports whether two checksum fields are equal or the two
// ones' complement representations of zero (0x0000 and 0xffff verify the
// same way).
func sameZero(a, b uint16) bool {
	return a == b || (a == 0 && b == 0xffff) || (a == 0xffff && b == 0)
}

// FuzzFixTransport: for any segment and addresses, FixTransport never
// panics, changes nothing but the checksum field, and:
//   - incremental (NAT-OA known): the segment verifies for the new
//     addresses exactly when it verified for the original ones, and when
//     it did, the field equals a full recomputation (up to the two
//     representations of zero);
//   - recomputed (NAT-OA unknown): the segment verifies afterwards;
//   - a UDP checksum of 0 stays 0.
func FuzzFixTransport(f *testing.F) {
	a, b := netip.MustParseAddr("10.99.0.2"), netip.MustParseAddr("203.0.113.10")
	u32 := func(x netip.Addr) uint32 { return binary.BigEndian.Uint32(x.AsSlice()) }
	for i, proto := range []uint8{ProtoTCP, ProtoUDP} {
		for _, n := range []int{0, 1, 7, 100} {
			seg := buildSegment(f, uint64(i*1000+n), proto, a, b, bytes.Repeat([]byte{byte(n)}, n))
			f.Add(seg, proto == ProtoTCP, u32(a), u32(b), uint32(0xc6336402), u32(b), true)
			f.Add(seg, proto == ProtoTCP, u32(a), u32(b), u32(a), uint32(0xc0a80002), false)
		}
	}
	f.Add([]byte{0, 1, 0, 2, 0, 8, 0, 0}, false, uint32(1), uint32(2), uint32(3), uint32(4), true)
	f.Add([]byte{0, 1, 0, 2, 0, 3, 0xff, 0xff}, false, uint32(1), uint32(2), uint32(3), uint32(4), true)
	f.Fuzz(func(t *testing.T, seg []byte, tcp bool, oSrc, oDst, nSrc, nDst uint32, withOA bool) {
		proto := uint8(ProtoUDP)
		if tcp {
			proto = ProtoTCP
		}
		origSrc, origDst, src, dst := addrFromUint(oSrc), addrFromUint(oDst), addrFromUint(nSrc), addrFromUint(nDst)
		validBefore := Verify(origSrc, origDst, proto, seg)
		out := append([]byte(nil), seg...)
		oaSrc, oaDst := origSrc, origDst
		if !withOA {
			oaSrc, oaDst = netip.Addr{}, netip.Addr{}
		}
		fix := FixTransport(out, proto, src, dst, oaSrc, oaDst)
		off := ChecksumOffset(proto)
		if len(out) != len(seg) {
			t.Fatal("length changed")
		}
		for i := range out {
			if out[i] != seg[i] && (i < off || i >= off+2) {
				t.Fatalf("byte %d changed (fix %s)", i, fix)
			}
		}
		switch fix {
		case FixNone:
			if !bytes.Equal(out, seg) {
				t.Fatal("FixNone changed the segment")
			}
			if len(seg) >= off+2 && !(proto == ProtoUDP && seg[6] == 0 && seg[7] == 0) && !(withOA && origSrc == src && origDst == dst) {
				t.Fatal("FixNone for a segment that needed a fix")
			}
		case FixZeroUDP:
			if proto != ProtoUDP || seg[6] != 0 || seg[7] != 0 || !bytes.Equal(out, seg) {
				t.Fatal("FixZeroUDP for a datagram with a checksum")
			}
		case FixIncremental:
			if !withOA {
				t.Fatal("incremental without NAT-OA")
			}
			if got := Verify(src, dst, proto, out); got != validBefore {
				t.Fatalf("verified before: %v, after: %v", validBefore, got)
			}
			if proto == ProtoUDP && out[6] == 0 && out[7] == 0 {
				t.Fatal("incremental fix produced a zero UDP checksum")
			}
			if validBefore {
				full, _ := Checksum(src, dst, proto, seg)
				if got := binary.BigEndian.Uint16(out[off:]); !sameZero(got, full) {
					t.Fatalf("incremental %04x, recomputed %04x", got, full)
				}
			}
		case FixRecomputed:
			if withOA {
				t.Fatal("recomputed with NAT-OA")
			}
			if !Verify(src, dst, proto, out) {
				t.Fatal("recomputed segment does not verify")
			}
		}
	})
}
