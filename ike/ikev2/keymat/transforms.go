package keymat

import (
	"crypto"
	"fmt"
)

// IKEv2 transform type 1 (encryption) IDs, used by IKE and ESP alike
// (IANA "Transform Type 1 - Encryption Algorithm Transform IDs").
const (
	EncrAESCBC   = 12 // RFC 3602; IKE: RFC 7296
	EncrAESGCM16 = 20 // RFC 4106 (ESP), RFC 5282 (IKE)
)

// IKEv2 transform type 3 (integrity) IDs (IANA "Transform Type 3 -
// Integrity Algorithm Transform IDs"); 0 = NONE, required with AEAD.
const (
	AuthNone           = 0
	AuthHMACSHA196     = 2  // RFC 2404
	AuthHMACSHA2256128 = 12 // RFC 4868
	AuthHMACSHA2384192 = 13 // RFC 4868
	AuthHMACSHA2512256 = 14 // RFC 4868
)

// Encryption is a negotiated encryption transform with its key length.
type Encryption struct {
	ID      uint16
	KeyBits int // the Key Length attribute (128 or 256)
	Name    string
	// KeyLen is the length of the key taken from keying material in
	// bytes: the AES key plus, for GCM, the 4-byte salt (RFC 5282 section
	// 7.1 for IKE, RFC 4106 section 8.1 for ESP).
	KeyLen  int
	SaltLen int
	AEAD    bool
}

// EncryptionByID returns the encryption transform for a transform type 1
// ID and its Key Length attribute in bits: ENCR_AES_CBC (12) and
// ENCR_AES_GCM_16 (20) with 128 or 256.
func EncryptionByID(id uint16, keyBits int) (Encryption, error) {
	if keyBits != 128 && keyBits != 256 {
		return Encryption{}, fmt.Errorf("ikev2 keymat: encryption transform %d with key length %d bits (supported: 128, 256)", id, keyBits)
	}
	switch id {
	case EncrAESCBC:
		return Encryption{ID: id, KeyBits: keyBits, Name: fmt.Sprintf("aes-cbc-%d", keyBits), KeyLen: keyBits / 8}, nil
	case EncrAESGCM16:
		return Encryption{ID: id, KeyBits: keyBits, Name: fmt.Sprintf("aes-gcm-16-%d", keyBits), KeyLen: keyBits/8 + 4, SaltLen: 4, AEAD: true}, nil
	}
	return Encryption{}, fmt.Errorf("ikev2 keymat: unsupported encryption transform %d (supported: 12=aes-cbc, 20=aes-gcm-16)", id)
}

// Integrity is a negotiated integrity transform (HMAC, truncated ICV), or
// NONE (ID 0, KeyLen 0) with an AEAD cipher.
type Integrity struct {
	ID     uint16
	Name   string
	Hash   crypto.Hash
	KeyLen int // bytes: the HMAC's output length (RFC 2404, RFC 4868 section 2.1.1)
	ICVLen int // bytes
}

var integrities = []Integrity{
	{ID: AuthNone, Name: "none"},
	{ID: AuthHMACSHA196, Name: "hmac-sha1-96", Hash: crypto.SHA1, KeyLen: 20, ICVLen: 12},
	{ID: AuthHMACSHA2256128, Name: "hmac-sha2-256-128", Hash: crypto.SHA256, KeyLen: 32, ICVLen: 16},
	{ID: AuthHMACSHA2384192, Name: "hmac-sha2-384-192", Hash: crypto.SHA384, KeyLen: 48, ICVLen: 24},
	{ID: AuthHMACSHA2512256, Name: "hmac-sha2-512-256", Hash: crypto.SHA512, KeyLen: 64, ICVLen: 32},
}

// IntegrityByID returns the integrity transform of a transform type 3 ID:
// 0 = NONE, 2 = HMAC-SHA1-96, 12 = HMAC-SHA2-256-128, 13 =
// HMAC-SHA2-384-192, 14 = HMAC-SHA2-512-256.
func IntegrityByID(id uint16) (Integrity, error) {
	for _, i := range integrities {
		if i.ID == id {
			return i, nil
		}
	}
	return Integrity{}, fmt.Errorf("ikev2 keymat: unsupported integrity transform %d (supported: 0=none, 2=hmac-sha1-96, 12=hmac-sha2-256-128, 13=hmac-sha2-384-192, 14=hmac-sha2-512-256)", id)
}

// checkPair rejects combinations RFC 7296 section 3.3 does not allow:
// an AEAD cipher with an integrity transform, a non-AEAD one without.
func checkPair(e Encryption, i Integrity) error {
	switch {
	case e.KeyLen == 0:
		return fmt.Errorf("ikev2 keymat: no encryption transform (use EncryptionByID)")
	case e.AEAD && i.ID != AuthNone:
		return fmt.Errorf("ikev2 keymat: %s is AEAD and takes no integrity transform, got %s", e.Name, i.Name)
	case !e.AEAD && i.ID == AuthNone:
		return fmt.Errorf("ikev2 keymat: %s needs an integrity transform", e.Name)
	}
	return nil
}
