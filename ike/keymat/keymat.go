// Package keymat implements the IKEv1 key derivations of RFC 2409
// (pre-shared-key SKEYID, SKEYID_d/a/e, phase 1 encryption key expansion,
// IVs, HASH_I/HASH_R, Quick Mode hashes and KEYMAT), the RFC 3947 NAT-D hash,
// and the truncated-HMAC integrity algorithms used by ESP/AH.
//
// The negotiated hash algorithm is passed as a crypto.Hash. The prf of
// RFC 2409 is always the HMAC version of the negotiated hash (no separate PRF
// attribute is supported, as is the case for all common implementations).
package keymat

import (
	"crypto"
	"crypto/hmac"
	_ "crypto/md5" // crypto.MD5 for NAT-D hashes of MD5 phase 1 SAs
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/binary"
	"fmt"
	"net/netip"
)

// PRF is the RFC 2409 prf: HMAC with hash h, keyed with key, over the
// concatenation of data.
func PRF(h crypto.Hash, key []byte, data ...[]byte) []byte {
	m := hmac.New(h.New, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(nil)
}

// plainHash returns hash(data[0] | data[1] | ...).
func plainHash(h crypto.Hash, data ...[]byte) []byte {
	d := h.New()
	for _, b := range data {
		d.Write(b)
	}
	return d.Sum(nil)
}

func msgIDBytes(id uint32) []byte {
	return binary.BigEndian.AppendUint32(nil, id)
}

// SKEYIDPreShared computes SKEYID for pre-shared key authentication,
// RFC 2409 section 5: SKEYID = prf(pre-shared-key, Ni_b | Nr_b).
func SKEYIDPreShared(h crypto.Hash, psk, ni, nr []byte) []byte {
	return PRF(h, psk, ni, nr)
}

// Phase1Keys holds SKEYID and the three keys derived from it.
type Phase1Keys struct{ SKEYID, D, A, E []byte }

// DerivePhase1 derives SKEYID_d, SKEYID_a and SKEYID_e (RFC 2409 section 5):
//
//	SKEYID_d = prf(SKEYID, g^xy | CKY-I | CKY-R | 0)
//	SKEYID_a = prf(SKEYID, SKEYID_d | g^xy | CKY-I | CKY-R | 1)
//	SKEYID_e = prf(SKEYID, SKEYID_a | g^xy | CKY-I | CKY-R | 2)
//
// where 0, 1, 2 are single octets.
func DerivePhase1(h crypto.Hash, skeyid, gxy, ckyI, ckyR []byte) Phase1Keys {
	d := PRF(h, skeyid, gxy, ckyI, ckyR, []byte{0})
	a := PRF(h, skeyid, d, gxy, ckyI, ckyR, []byte{1})
	e := PRF(h, skeyid, a, gxy, ckyI, ckyR, []byte{2})
	return Phase1Keys{SKEYID: append([]byte(nil), skeyid...), D: d, A: a, E: e}
}

// EncryptionKey derives the phase 1 cipher key of n bytes from SKEYID_e
// (RFC 2409 appendix B). If SKEYID_e is long enough its first n bytes are
// used; otherwise
//
//	Ka = K1 | K2 | K3 | ...,  K1 = prf(SKEYID_e, 0),  Ki = prf(SKEYID_e, K(i-1))
//
// where 0 is a single zero octet, truncated to n bytes.
func EncryptionKey(h crypto.Hash, skeyidE []byte, n int) []byte {
	if len(skeyidE) >= n {
		return append([]byte(nil), skeyidE[:n]...)
	}
	out := make([]byte, 0, n+h.Size())
	k := PRF(h, skeyidE, []byte{0})
	out = append(out, k...)
	for len(out) < n {
		k = PRF(h, skeyidE, k)
		out = append(out, k...)
	}
	return out[:n]
}

// Phase1IV is the initial phase 1 IV, RFC 2409 appendix B:
// hash(g^xi | g^xr) truncated to the cipher block size (a plain hash, not
// the prf).
func Phase1IV(h crypto.Hash, gxi, gxr []byte, blockSize int) []byte {
	return truncate(plainHash(h, gxi, gxr), blockSize)
}

// MessageIV is the IV of the first message of a phase 2 (Quick Mode) or
// informational exchange, RFC 2409 appendix B: hash(last CBC block of the
// last phase 1 message | M-ID) truncated to the block size.
func MessageIV(h crypto.Hash, lastPhase1Block []byte, msgID uint32, blockSize int) []byte {
	return truncate(plainHash(h, lastPhase1Block, msgIDBytes(msgID)), blockSize)
}

func truncate(b []byte, n int) []byte {
	if n > len(b) {
		panic(fmt.Sprintf("keymat: cannot truncate %d-byte hash to %d bytes", len(b), n))
	}
	return b[:n]
}

// HashI is the initiator's phase 1 authentication hash, RFC 2409 section 5:
// HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b).
func HashI(h crypto.Hash, skeyid, gxi, gxr, ckyI, ckyR, saiB, idiiB []byte) []byte {
	return PRF(h, skeyid, gxi, gxr, ckyI, ckyR, saiB, idiiB)
}

// HashR is the responder's phase 1 authentication hash, RFC 2409 section 5:
// HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b).
func HashR(h crypto.Hash, skeyid, gxr, gxi, ckyR, ckyI, saiB, idirB []byte) []byte {
	return PRF(h, skeyid, gxr, gxi, ckyR, ckyI, saiB, idirB)
}

// QMHash1 is Quick Mode HASH(1) = prf(SKEYID_a, M-ID | rest), RFC 2409
// section 5.5, where rest is every payload after the HASH payload. The same
// construction is HASH(1) of informational exchanges (section 5.7).
func QMHash1(h crypto.Hash, skeyidA []byte, msgID uint32, rest []byte) []byte {
	return PRF(h, skeyidA, msgIDBytes(msgID), rest)
}

// QMHash2 is Quick Mode HASH(2) = prf(SKEYID_a, M-ID | Ni_b | rest).
func QMHash2(h crypto.Hash, skeyidA []byte, msgID uint32, niB, rest []byte) []byte {
	return PRF(h, skeyidA, msgIDBytes(msgID), niB, rest)
}

// QMHash3 is Quick Mode HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b), 0
// being a single zero octet.
func QMHash3(h crypto.Hash, skeyidA []byte, msgID uint32, niB, nrB []byte) []byte {
	return PRF(h, skeyidA, []byte{0}, msgIDBytes(msgID), niB, nrB)
}

// Keymat derives n bytes of IPsec SA keying material, RFC 2409 section 5.5:
//
//	KEYMAT = K1 | K2 | K3 | ...
//	K1 = prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b)
//	Ki = prf(SKEYID_d, K(i-1) | [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b)
//
// gqm is the Quick Mode (PFS) Diffie-Hellman shared secret, nil without PFS.
// protocol is the IPsec protocol ID (2 = AH, 3 = ESP) and spi the SPI of the
// SA the key is for (the inbound SPI of whoever receives on that SA). The
// encryption key is taken from the start of KEYMAT and the integrity key
// follows it.
func Keymat(h crypto.Hash, skeyidD, gqm []byte, protocol uint8, spi []byte, niB, nrB []byte, n int) []byte {
	out := make([]byte, 0, n+h.Size())
	var prev []byte
	for len(out) < n {
		prev = PRF(h, skeyidD, prev, gqm, []byte{protocol}, spi, niB, nrB)
		out = append(out, prev...)
	}
	return out[:n]
}

// NATDHash is the RFC 3947 section 3.2 NAT-D payload hash:
// HASH(CKY-I | CKY-R | IP | Port) with the negotiated phase 1 hash (a plain
// hash), IP as 4 (IPv4, including IPv4-mapped IPv6) or 16 octets and the port
// as 2 octets, network byte order.
func NATDHash(h crypto.Hash, ckyI, ckyR []byte, addr netip.AddrPort) []byte {
	ip := addr.Addr().Unmap()
	var ipb []byte
	if ip.Is4() {
		a := ip.As4()
		ipb = a[:]
	} else {
		a := ip.As16()
		ipb = a[:]
	}
	return plainHash(h, ckyI, ckyR, ipb, binary.BigEndian.AppendUint16(nil, addr.Port()))
}

// IKEv1 hash algorithm attribute values (RFC 2409 appendix A, IANA "IPSEC
// Hash Algorithm" / Oakley hash registry).
const (
	ikeHashMD5    = 1
	ikeHashSHA1   = 2
	ikeHashSHA256 = 4
	ikeHashSHA384 = 5
	ikeHashSHA512 = 6
)

// HashFromIKE maps an IKEv1 phase 1 hash algorithm attribute value to a
// crypto.Hash: 2 = SHA1, 4 = SHA2-256, 5 = SHA2-384, 6 = SHA2-512. MD5 (1)
// and Tiger (3) are not supported.
func HashFromIKE(v uint16) (crypto.Hash, error) {
	switch v {
	case ikeHashSHA1:
		return crypto.SHA1, nil
	case ikeHashSHA256:
		return crypto.SHA256, nil
	case ikeHashSHA384:
		return crypto.SHA384, nil
	case ikeHashSHA512:
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("keymat: unsupported IKEv1 hash algorithm %d (supported: 2=sha1, 4=sha256, 5=sha384, 6=sha512)", v)
}

// IKEHashValue is the inverse of HashFromIKE; it returns 0 for an unsupported
// hash.
func IKEHashValue(h crypto.Hash) uint16 {
	switch h {
	case crypto.SHA1:
		return ikeHashSHA1
	case crypto.SHA256:
		return ikeHashSHA256
	case crypto.SHA384:
		return ikeHashSHA384
	case crypto.SHA512:
		return ikeHashSHA512
	}
	return 0
}

// HashName returns "sha1", "sha256", "sha384" or "sha512" ("md5" for MD5,
// used only by NAT-D of legacy peers); other hashes give h.String().
func HashName(h crypto.Hash) string {
	switch h {
	case crypto.MD5:
		return "md5"
	case crypto.SHA1:
		return "sha1"
	case crypto.SHA256:
		return "sha256"
	case crypto.SHA384:
		return "sha384"
	case crypto.SHA512:
		return "sha512"
	}
	return h.String()
}

// HashByName is the inverse of HashName (case-insensitive; "sha-1",
// "sha2-256", "sha-256" etc. are also accepted).
func HashByName(name string) (crypto.Hash, error) {
	switch normalizeHashName(name) {
	case "md5":
		return crypto.MD5, nil
	case "sha1":
		return crypto.SHA1, nil
	case "sha256":
		return crypto.SHA256, nil
	case "sha384":
		return crypto.SHA384, nil
	case "sha512":
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("keymat: unknown hash %q (known: md5, sha1, sha256, sha384, sha512)", name)
}

func normalizeHashName(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c == '-' || c == '_' {
			continue
		}
		b = append(b, c)
	}
	n := string(b)
	switch n {
	case "sha2256":
		return "sha256"
	case "sha2384":
		return "sha384"
	case "sha2512":
		return "sha512"
	}
	return n
}
