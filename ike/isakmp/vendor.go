package isakmp

import (
	"bytes"
	"encoding/hex"
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Well-known vendor IDs. Values from /work/shared/vectors/ikev1_natt_dpd_vendor_ids.json.
var (
	// VendorRFC3947NATT is MD5("RFC 3947"), RFC 3947 section 3.1.
	VendorRFC3947NATT = mustHex("4a131c81070358455c5728f20e95452f")
	// VendorNATTDraft00 .. 03 are MD5 of the draft names
	// ("draft-ietf-ipsec-nat-t-ike-00" ...); Draft02N is MD5 of the -02 name
	// with a trailing newline, which implementations send as well.
	VendorNATTDraft00  = mustHex("4485152d18b6bbcd0be8a8469579ddcc")
	VendorNATTDraft01  = mustHex("16f6ca16e4a4066d83821a0f0aeaa862")
	VendorNATTDraft02  = mustHex("cd60464335df21f87cfdb2fc68b6a448")
	VendorNATTDraft02N = mustHex("90cb80913ebb696e086381b5ec427b1f")
	VendorNATTDraft03  = mustHex("7d9419a65310ca6f2c179d9215529d56")
	// VendorDPD is RFC 3706 section 5.1: HASHED_VENDOR_ID
	// afcad71368a1f1c96b8696fc7757 followed by major 1, minor 0.
	VendorDPD = mustHex("afcad71368a1f1c96b8696fc77570100")
	// VendorXAuth is the XAUTH VID (draft-ietf-ipsec-isakmp-xauth; libreswan,
	// strongSwan).
	VendorXAuth = mustHex("09002689dfd6b712")
	// VendorCiscoFrag is Cisco IKE fragmentation as sent by strongSwan
	// (16-byte ID plus 4 bytes of flags 0x80000000).
	VendorCiscoFrag = mustHex("4048b7d56ebce88525e7de7f00d6c2d380000000")
)

// VendorName returns a name for a known vendor ID, or "". Entries that the
// source marks as prefix matches (e.g. DPD with a version suffix, Cisco
// fragmentation with flags) match on their leading bytes; the longest match
// wins.
func VendorName(vid []byte) string {
	best, bestLen := "", -1
	for _, e := range knownVendorIDs {
		v := vendorBytes(e.vid)
		if e.n == 0 {
			if bytes.Equal(vid, v) && len(v) > bestLen {
				best, bestLen = e.name, len(v)
			}
			continue
		}
		if len(vid) >= e.n && bytes.Equal(vid[:e.n], v[:e.n]) && e.n > bestLen {
			best, bestLen = e.name, e.n
		}
	}
	return best
}

var vendorCache = map[string][]byte{}

func init() {
	for _, e := range knownVendorIDs {
		vendorCache[e.vid] = mustHex(e.vid)
	}
}

func vendorBytes(h string) []byte { return vendorCache[h] }
