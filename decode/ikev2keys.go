package decode

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
	"github.com/vpnlab/vpnlab/keylog"
)

// IKEv2Key is one IKEv2 SA's keys (Wireshark's ikev2_decryption_table:
// SPIs, SK_ei/SK_er, SK_ai/SK_ar and the two algorithm names).
type IKEv2Key struct {
	SPIi, SPIr [8]byte
	Encr       wire.EncrID
	KeyBits    int
	EncName    string
	Integ      wire.IntegID
	IntegName  string
	SKei, SKer []byte // AES-GCM: key followed by the 4-byte salt
	SKai, SKar []byte
	Source     string
}

// String never shows the keys.
func (k IKEv2Key) String() string {
	return fmt.Sprintf("IKEv2Key(%x/%x, %s)", k.SPIi[:], k.SPIr[:], k.Source)
}

// ikev2EncByName maps Wireshark's IKEv2 encryption names (as keylog and
// strongSwan's save-keys write them) to the transform and key length.
var ikev2EncByName = func() map[string][2]int {
	m := map[string][2]int{}
	for _, id := range []uint16{3, 11, 12, 13, 14, 15, 16, 18, 19, 20} {
		for _, bits := range []int{128, 192, 256} {
			if n, ok := keylog.IKEv2EncryptionName(id, bits); ok {
				m[strings.ToLower(n)] = [2]int{int(id), bits}
			}
		}
	}
	return m
}()

var ikev2IntegByName = func() map[string]wire.IntegID {
	m := map[string]wire.IntegID{}
	for _, id := range []uint16{0, 1, 2, 12, 13, 14} {
		if n, ok := keylog.IKEv2IntegrityName(id); ok {
			m[strings.ToLower(n)] = wire.IntegID(id)
		}
	}
	return m
}()

// addIKEv2 parses one ikev2_decryption_table record. Errors never quote
// the record.
func (k *Keys) addIKEv2(rec, src string) error {
	f := splitUAT(rec)
	if len(f) != 8 {
		return fmt.Errorf("IKEv2 record has %d fields, want 8 (SPIi, SPIr, SK_ei, SK_er, encryption, SK_ai, SK_ar, integrity)", len(f))
	}
	e := IKEv2Key{EncName: f[4], IntegName: f[7], Source: src}
	spii, err1 := parseHex(f[0])
	spir, err2 := parseHex(f[1])
	if err1 != nil || err2 != nil || len(spii) != 8 || len(spir) != 8 {
		return fmt.Errorf("IKEv2 record: the SPIs are not 16 hex digits each")
	}
	e.SPIi, e.SPIr = [8]byte(spii), [8]byte(spir)
	for i, dst := range []*[]byte{&e.SKei, &e.SKer, nil, &e.SKai, &e.SKar} {
		if dst == nil {
			continue
		}
		b, err := parseHex(f[2+i])
		if err != nil {
			return fmt.Errorf("IKEv2 record: field %d (key) %v", 3+i, err)
		}
		*dst = b
	}
	alg, ok := ikev2EncByName[strings.ToLower(f[4])]
	if !ok {
		alg = [2]int{-1, 0} // unknown to us: kept, reported per SA
	}
	e.Encr, e.KeyBits = wire.EncrID(alg[0]), alg[1]
	integ, ok := ikev2IntegByName[strings.ToLower(f[7])]
	if !ok {
		integ = 0xffff
	}
	e.Integ = integ
	id := spiPair(e.SPIi, e.SPIr)
	for _, have := range k.IKEv2[id] {
		if bytes.Equal(have.SKei, e.SKei) && bytes.Equal(have.SKer, e.SKer) {
			return nil // the same SA from both sides' logs
		}
	}
	k.IKEv2[id] = append(k.IKEv2[id], e)
	return nil
}

func spiPair(i, r [8]byte) [16]byte {
	var b [16]byte
	copy(b[:8], i[:])
	copy(b[8:], r[:])
	return b
}

// suites returns the decrypting suites of a key for messages from the
// initiator (fromI) or the responder, or why there is none.
func (k IKEv2Key) suite(fromI bool) (*wire.Suite, error) {
	if k.Encr != wire.EncrAESCBC && k.Encr != wire.EncrAESGCM16 {
		return nil, fmt.Errorf("encryption %q is not implemented here (AES-CBC and AES-GCM-16 are)", k.EncName)
	}
	wk := wire.Keys{Encr: k.Encr, Integ: k.Integ, EncrKey: k.SKei, IntegKey: k.SKai}
	if !fromI {
		wk.EncrKey, wk.IntegKey = k.SKer, k.SKar
	}
	if k.Encr == wire.EncrAESGCM16 {
		wk.Integ, wk.IntegKey = wire.IntegNone, nil
	}
	return wire.NewSuite(wk)
}
