package keylog

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/vpnlab/vpnlab/ike/status"
)

// TableIKEv2 is Wireshark's IKEv2 decryption table (packet-isakmp.c; the
// same file strongSwan's save-keys plugin writes).
const TableIKEv2 = "ikev2_decryption_table"

var _ status.IKEv2KeyLogger = (*Writer)(nil)

// IKEv2 transform IDs (RFC 7296 section 3.3.2, IANA "IKEv2 Transform
// Attribute Types"; RFC 4309/4106 via RFC 5282 for CCM/GCM).
const (
	encr3DES     = 3
	encrNULL     = 11
	encrAESCBC   = 12
	encrAESCTR   = 13
	encrAESCCM8  = 14
	encrAESCCM12 = 15
	encrAESCCM16 = 16
	encrAESGCM8  = 18
	encrAESGCM12 = 19
	encrAESGCM16 = 20
)

// IKEv2EncryptionName is the name Wireshark's IKEv2 decryption table
// stores for an encryption transform ID and key length in bits
// (vs_ikev2_encr_algs in epan/dissectors/packet-isakmp.c of
// wireshark/wireshark); ok is false for a transform Wireshark cannot
// decrypt.
func IKEv2EncryptionName(id uint16, keyBits int) (name string, ok bool) {
	aes := keyBits == 128 || keyBits == 192 || keyBits == 256
	switch id {
	case encr3DES:
		return "3DES [RFC2451]", true
	case encrNULL:
		return "NULL [RFC2410]", true
	case encrAESCBC:
		return fmt.Sprintf("AES-CBC-%d [RFC3602]", keyBits), aes
	case encrAESCTR:
		return fmt.Sprintf("AES-CTR-%d [RFC5930]", keyBits), aes
	case encrAESGCM8, encrAESGCM12, encrAESGCM16:
		return fmt.Sprintf("AES-GCM-%d with %d octet ICV [RFC5282]", keyBits, aeadICV(id)), aes
	case encrAESCCM8, encrAESCCM12, encrAESCCM16:
		return fmt.Sprintf("AES-CCM-%d with %d octet ICV [RFC5282]", keyBits, aeadICV(id)), aes
	}
	return "", false
}

func aeadICV(id uint16) int {
	switch id {
	case encrAESGCM8, encrAESCCM8:
		return 8
	case encrAESGCM12, encrAESCCM12:
		return 12
	}
	return 16
}

// IsAEAD reports whether an IKEv2 encryption transform is combined mode
// (no integrity transform; Wireshark's integrity field is "NONE").
func IsAEAD(id uint16) bool {
	switch id {
	case encrAESCCM8, encrAESCCM12, encrAESCCM16, encrAESGCM8, encrAESGCM12, encrAESGCM16:
		return true
	}
	return false
}

// ikev2IntegrityNames are vs_ikev2_auth_algs of packet-isakmp.c by IKEv2
// integrity transform ID (0 = NONE, used with an AEAD cipher).
var ikev2IntegrityNames = map[uint16]string{
	0:  "NONE [RFC4306]",
	1:  "HMAC_MD5_96 [RFC2403]",
	2:  "HMAC_SHA1_96 [RFC2404]",
	12: "HMAC_SHA2_256_128 [RFC4868]",
	13: "HMAC_SHA2_384_192 [RFC4868]",
	14: "HMAC_SHA2_512_256 [RFC4868]",
}

// ikev2EncrKeyLen is the SK_e length Wireshark requires (ikev2_encr_algs
// in packet-isakmp.c): the cipher key plus 4 bytes of salt for GCM
// (RFC 5282), 3 for CCM (RFC 5282), 4 nonce bytes for CTR (RFC 5930).
func ikev2EncrKeyLen(id uint16, keyBits int) int {
	switch id {
	case encr3DES:
		return 24
	case encrNULL:
		return 0
	case encrAESGCM8, encrAESGCM12, encrAESGCM16, encrAESCTR:
		return keyBits/8 + 4
	case encrAESCCM8, encrAESCCM12, encrAESCCM16:
		return keyBits/8 + 3
	}
	return keyBits / 8
}

// ikev2IntegKeyLen is the SK_a length of an integrity transform (the
// HMAC's output length, RFC 2403/2404/4868).
var ikev2IntegKeyLen = map[uint16]int{0: 0, 1: 16, 2: 20, 12: 32, 13: 48, 14: 64}

// IKEv2IntegrityName is the Wireshark name of an IKEv2 integrity
// transform ID; ok is false for one Wireshark does not know.
func IKEv2IntegrityName(id uint16) (string, bool) {
	n, ok := ikev2IntegrityNames[id]
	return n, ok
}

// IKEv2Record is the ikev2_decryption_table record of k (the text after
// "ikev2_decryption_table:"), or an error naming what Wireshark cannot
// take. The error never contains key material.
func IKEv2Record(k status.IKEv2Keys) (string, error) {
	enc, ok := IKEv2EncryptionName(k.EncrID, k.EncrKeyBits)
	if !ok {
		return "", fmt.Errorf("encryption transform %d (%d bits) unknown to Wireshark", k.EncrID, k.EncrKeyBits)
	}
	integID := k.IntegID
	skai, skar := k.SKai, k.SKar
	if IsAEAD(k.EncrID) {
		integID, skai, skar = 0, nil, nil
	}
	integ, ok := IKEv2IntegrityName(integID)
	if !ok {
		return "", fmt.Errorf("integrity transform %d unknown to Wireshark", integID)
	}
	if integID == 0 && !IsAEAD(k.EncrID) && k.EncrID != encrNULL {
		return "", fmt.Errorf("encryption transform %d needs an integrity transform", k.EncrID)
	}
	if want := ikev2EncrKeyLen(k.EncrID, k.EncrKeyBits); len(k.SKei) != want || len(k.SKer) != want {
		return "", fmt.Errorf("SK_ei/SK_er are %d/%d bytes, Wireshark needs %d for %s", len(k.SKei), len(k.SKer), want, enc)
	}
	if want := ikev2IntegKeyLen[integID]; len(skai) != want || len(skar) != want {
		return "", fmt.Errorf("SK_ai/SK_ar are %d/%d bytes, Wireshark needs %d for %s", len(skai), len(skar), want, integ)
	}
	h := hex.EncodeToString
	return fmt.Sprintf("%s,%s,%s,%s,%s,%s,%s,%s", h(k.SPIi[:]), h(k.SPIr[:]), h(k.SKei), h(k.SKer),
		quote(enc), h(skai), h(skar), quote(integ)), nil
}

// IKEv2Keys records an IKEv2 SA (implements status.IKEv2KeyLogger): a
// comment with the SPIs, then its ikev2_decryption_table record. An SA
// whose algorithms Wireshark does not know gets a comment instead.
func (w *Writer) IKEv2Keys(k status.IKEv2Keys) {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s IKEv2 SA SPIi %x SPIr %x\n", w.now().UTC().Format(time.RFC3339), k.SPIi[:], k.SPIr[:])
	rec, err := IKEv2Record(k)
	if err != nil {
		fmt.Fprintf(&b, "# IKEv2 SA %x/%x: %v, no record\n", k.SPIi[:], k.SPIr[:], err)
	} else {
		b.WriteString(TableIKEv2 + ":" + rec + "\n")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.write(b.String())
}

// checkIKEv2Record checks the shape of an ikev2_decryption_table record:
// eight fields, 16 hex digit SPIs, hex keys, quoted algorithm names. Its
// messages never include the value.
func checkIKEv2Record(value string) error {
	f := strings.Split(value, ",")
	bad := fmt.Errorf("%s record needs <SPIi>,<SPIr>,<SK_ei>,<SK_er>,\"<encryption>\",<SK_ai>,<SK_ar>,\"<integrity>\" (SPIs 16 hex digits, keys hex)", TableIKEv2)
	if len(f) != 8 {
		return bad
	}
	for i, s := range f {
		switch i {
		case 0, 1:
			if len(s) != 16 || !isHex(s) {
				return bad
			}
		case 2, 3, 5, 6:
			if len(s)%2 != 0 || !isHex(s) {
				return bad
			}
		case 4, 7:
			if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' || strings.Contains(s[1:len(s)-1], `"`) {
				return bad
			}
		}
	}
	return nil
}
