package keymat

import (
	"crypto"
	"crypto/hmac"
	"fmt"
)

// Integrity describes an ESP/AH HMAC integrity algorithm with a truncated
// ICV.
type Integrity struct {
	Name   string
	Hash   crypto.Hash
	KeyLen int // bytes
	ICVLen int // bytes
}

// IPsec DOI authentication algorithm attribute values (RFC 2407 section
// 4.5, IANA "IPSEC Authentication Algorithms" / RFC 4868 section 2.4).
var integrityAlgs = map[uint16]Integrity{
	// HMAC-SHA-1-96, RFC 2404.
	2: {Name: "hmac-sha1-96", Hash: crypto.SHA1, KeyLen: 20, ICVLen: 12},
	// HMAC-SHA-256-128, RFC 4868 section 2.
	5: {Name: "hmac-sha2-256-128", Hash: crypto.SHA256, KeyLen: 32, ICVLen: 16},
	// HMAC-SHA-384-192, RFC 4868 section 2.
	6: {Name: "hmac-sha2-384-192", Hash: crypto.SHA384, KeyLen: 48, ICVLen: 24},
	// HMAC-SHA-512-256, RFC 4868 section 2.
	7: {Name: "hmac-sha2-512-256", Hash: crypto.SHA512, KeyLen: 64, ICVLen: 32},
}

// IntegrityByIKE returns the integrity algorithm for an IPsec DOI
// authentication algorithm value: 2 = HMAC-SHA1-96, 5 = HMAC-SHA2-256-128,
// 6 = HMAC-SHA2-384-192, 7 = HMAC-SHA2-512-256.
func IntegrityByIKE(authAlg uint16) (Integrity, error) {
	if i, ok := integrityAlgs[authAlg]; ok {
		return i, nil
	}
	return Integrity{}, fmt.Errorf("keymat: unsupported IPsec authentication algorithm %d (supported: 2=hmac-sha1-96, 5=hmac-sha2-256-128, 6=hmac-sha2-384-192, 7=hmac-sha2-512-256)", authAlg)
}

// ICV returns HMAC(key, data) truncated to ICVLen bytes. The key length is
// not enforced here (test vectors use other lengths); callers deriving keys
// from KEYMAT take KeyLen bytes.
func (i Integrity) ICV(key, data []byte) []byte {
	m := hmac.New(i.Hash.New, key)
	m.Write(data)
	return m.Sum(nil)[:i.ICVLen]
}

// Verify reports whether icv is the correct ICV for data, in constant time.
func (i Integrity) Verify(key, data, icv []byte) bool {
	return len(icv) == i.ICVLen && hmac.Equal(i.ICV(key, data), icv)
}
