package decode

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"fmt"

	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/keymat"
)

// suite is the phase 1 algorithm set chosen in MM2/AM2, as far as the
// decoder needs it.
type suite struct {
	cipher  uint16 // RFC 2409 appendix A: 1 DES, 5 3DES, 7 AES-CBC
	keyBits int    // AES key length attribute, 0 if absent
	hashID  uint16
	hash    crypto.Hash // 0 when unsupported (Tiger)
	auth    uint16
	group   uint16
}

// suiteOf reads a phase 1 transform's attributes.
func suiteOf(t isakmp.Transform) suite {
	var s suite
	for _, a := range t.Attributes {
		v, err := a.Uint()
		if err != nil || v > 0xffff {
			continue
		}
		switch a.Type {
		case isakmp.AttrEncryptionAlgorithm:
			s.cipher = uint16(v)
		case isakmp.AttrKeyLength:
			s.keyBits = int(v)
		case isakmp.AttrHashAlgorithm:
			s.hashID = uint16(v)
		case isakmp.AttrAuthenticationMethod:
			s.auth = uint16(v)
		case isakmp.AttrGroupDescription:
			s.group = uint16(v)
		}
	}
	s.hash = ikeHash(s.hashID)
	return s
}

// ikeHash maps the phase 1 hash attribute; MD5 is accepted here (read-only
// decoding of old captures), unlike keymat.HashFromIKE which the engine
// uses to refuse it.
func ikeHash(v uint16) crypto.Hash {
	if v == 1 {
		return crypto.MD5
	}
	h, err := keymat.HashFromIKE(v)
	if err != nil {
		return 0
	}
	return h
}

// newBlock builds the phase 1 block cipher for a key: DES, 3DES (both from
// the standard library, read-only) or AES. With cipher 0 (MM2 not in the
// capture) the key length decides: 8 DES, 16/32 AES, 24 3DES then AES-192.
func newBlock(cipherID uint16, key []byte) ([]cipher.Block, error) {
	switch cipherID {
	case 1:
		b, err := des.NewCipher(key)
		return one(b, err)
	case 5:
		b, err := des.NewTripleDESCipher(key)
		return one(b, err)
	case 7:
		b, err := aes.NewCipher(key)
		return one(b, err)
	case 0:
		var out []cipher.Block
		if len(key) == 8 {
			if b, err := des.NewCipher(key); err == nil {
				out = append(out, b)
			}
		}
		if len(key) == 24 {
			if b, err := des.NewTripleDESCipher(key); err == nil {
				out = append(out, b)
			}
		}
		if b, err := aes.NewCipher(key); err == nil {
			out = append(out, b)
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("no cipher takes a %d-byte key", len(key))
		}
		return out, nil
	}
	return nil, fmt.Errorf("phase 1 cipher %s is not supported by the decoder", cipherName(cipherID))
}

func one(b cipher.Block, err error) ([]cipher.Block, error) {
	if err != nil {
		return nil, err
	}
	return []cipher.Block{b}, nil
}

func cipherName(id uint16) string {
	return isakmp.AttrString(isakmp.ProtoISAKMP, isakmp.AttrBasic(isakmp.AttrEncryptionAlgorithm, id))
}

// cbcDecrypt decrypts ct with iv; ct must be a whole number of blocks.
func cbcDecrypt(b cipher.Block, iv, ct []byte) ([]byte, error) {
	bs := b.BlockSize()
	if len(ct) == 0 || len(ct)%bs != 0 {
		return nil, fmt.Errorf("encrypted body of %d bytes is not a multiple of the %d-byte block", len(ct), bs)
	}
	if len(iv) != bs {
		return nil, fmt.Errorf("IV of %d bytes for a %d-byte block", len(iv), bs)
	}
	out := make([]byte, len(ct))
	cipher.NewCBCDecrypter(b, iv).CryptBlocks(out, ct)
	return out, nil
}

// phase1IV is RFC 2409 appendix B's first phase 1 IV, hash(g^xi | g^xr)
// truncated to the block size; nil when the hash is unknown or too short.
func phase1IV(h crypto.Hash, gxi, gxr []byte, bs int) []byte {
	if h == 0 || !h.Available() || h.Size() < bs || len(gxi) == 0 || len(gxr) == 0 {
		return nil
	}
	return keymat.Phase1IV(h, gxi, gxr, bs)
}

// messageIV is the first IV of a quick mode or informational exchange.
func messageIV(h crypto.Hash, last []byte, mid uint32, bs int) []byte {
	if h == 0 || !h.Available() || h.Size() < bs || len(last) == 0 {
		return nil
	}
	return keymat.MessageIV(h, last, mid, bs)
}

func lastBlock(ct []byte, bs int) []byte {
	if len(ct) < bs {
		return nil
	}
	return append([]byte(nil), ct[len(ct)-bs:]...)
}
