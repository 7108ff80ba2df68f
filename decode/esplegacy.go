package decode

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	_ "crypto/md5" // HMAC-MD5-96, read-only
	"encoding/binary"
	"fmt"
	"hash"

	"github.com/vpnlab/vpnlab/esp"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/keymat"
)

// espOpener opens one inbound ESP packet: the plaintext payload and the
// next header. *esp.SA is one; legacyESP is the other.
type espOpener interface {
	OpenESP(dst, packet []byte) ([]byte, byte, error)
}

// legacyESP decrypts ESP with algorithms the data path must never
// negotiate and the esp package therefore does not have: DES-CBC and
// 3DES-CBC (RFC 2405, RFC 2451) and HMAC-MD5-96 (RFC 2403, also with
// AES-CBC), from Go's
// standard library. Read-only, for old captures. Replays are judged by the
// caller (it sees every sequence number).
type legacyESP struct {
	spi    uint32
	block  cipher.Block
	mac    hash.Hash // nil: no integrity
	icvLen int
}

// newLegacyESP builds the opener for a key the esp package refused, if
// the algorithms are legacy ones this file handles.
func newLegacyESP(spi uint32, k ESPKey) (*legacyESP, error) {
	l := &legacyESP{spi: spi}
	var err error
	switch k.Encryption {
	case 2: // ESP_DES
		l.block, err = des.NewCipher(k.EncKey)
	case 3: // ESP_3DES
		l.block, err = des.NewTripleDESCipher(k.EncKey)
	case isakmp.ESPAESCBC: // only reached with HMAC-MD5
		l.block, err = aes.NewCipher(k.EncKey)
	default:
		return nil, fmt.Errorf("ESP transform %s is not supported by the decoder", isakmp.TransformName(isakmp.ProtoESP, k.Encryption))
	}
	if err != nil {
		return nil, fmt.Errorf("%s key: %v", k.EncName, err)
	}
	switch k.Integrity {
	case 0:
	case isakmp.AuthHMACMD5:
		l.mac, l.icvLen = hmac.New(crypto.MD5.New, k.AuthKey), 12
	default:
		alg, err := keymat.IntegrityByIKE(k.Integrity)
		if err != nil {
			return nil, err
		}
		l.mac, l.icvLen = hmac.New(alg.Hash.New, k.AuthKey), alg.ICVLen
	}
	return l, nil
}

// OpenESP verifies the ICV, decrypts, and strips the trailer (the padding
// bytes are not checked: RFC 2406 implementations did not all use 1, 2,
// 3, ...).
func (l *legacyESP) OpenESP(dst, packet []byte) ([]byte, byte, error) {
	bs := l.block.BlockSize()
	hdr := 8 + bs
	body := len(packet) - hdr - l.icvLen
	if body < bs || body%bs != 0 {
		return dst, 0, esp.DropMalformed
	}
	if binary.BigEndian.Uint32(packet) != l.spi {
		return dst, 0, esp.DropNoSA
	}
	if l.mac != nil {
		l.mac.Reset()
		l.mac.Write(packet[:hdr+body])
		if !hmac.Equal(l.mac.Sum(nil)[:l.icvLen], packet[hdr+body:]) {
			return dst, 0, esp.DropICV
		}
	}
	pt := make([]byte, body)
	cipher.NewCBCDecrypter(l.block, packet[8:hdr]).CryptBlocks(pt, packet[hdr:hdr+body])
	pad := int(pt[body-2])
	if pad > body-2 {
		return dst, 0, esp.DropPadding
	}
	return append(dst, pt[:body-2-pad]...), pt[body-1], nil
}
