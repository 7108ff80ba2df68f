package testvectors

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vpnlab/vpnlab/ike/keymat"
)

func init() { Register("ikev1-keymat", checkIKEv1Keymat) }

// ---- ikev1-keymat ----

// keymatVector is an IKEv1 Quick Mode KEYMAT vector (RFC 2409 section 5.5).
// GQMxy is the PFS Diffie-Hellman shared secret; absent means no PFS.
type keymatVector struct {
	Common
	Hash     string `json:"hash"`
	SKEYIDd  Hex    `json:"skeyid_d"`
	Protocol *int   `json:"protocol"`
	SPI      Hex    `json:"spi"`
	NiB      Hex    `json:"ni_b"`
	NrB      Hex    `json:"nr_b"`
	GQMxy    Hex    `json:"g_qm_xy,omitempty"`
	Length   *int   `json:"length"`
	Keymat   Hex    `json:"keymat"`
}

// checkIKEv1Keymat checks keymat.Keymat:
//
//	KEYMAT = K1 | K2 | ...
//	K1 = prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b)
//	Ki = prf(SKEYID_d, K(i-1) | [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b)
func checkIKEv1Keymat(raw json.RawMessage) (string, error) {
	var v keymatVector
	if err := DecodeVector(raw, &v); err != nil {
		return "", err
	}
	if err := Require("hash", v.Hash, "skeyid_d", v.SKEYIDd, "spi", v.SPI, "ni_b", v.NiB, "nr_b", v.NrB, "keymat", v.Keymat); err != nil {
		return "", err
	}
	h, err := keymat.HashByName(v.Hash)
	if err != nil {
		return "", err
	}
	if keymat.IKEHashValue(h) == 0 {
		return "", fmt.Errorf("invalid vector: hash %q is not an IKEv1 hash supported by vpnlab (sha1, sha256, sha384, sha512)", v.Hash)
	}
	switch {
	case v.Protocol == nil:
		return "", errors.New("invalid vector: missing \"protocol\"")
	case *v.Protocol != 2 && *v.Protocol != 3:
		return "", fmt.Errorf("invalid vector: protocol must be 2 (AH) or 3 (ESP), got %d", *v.Protocol)
	case len(v.SPI) != 4:
		return "", fmt.Errorf("invalid vector: spi must be 4 bytes, got %d", len(v.SPI))
	case v.GQMxy != nil && len(v.GQMxy) == 0:
		return "", errors.New("invalid vector: g_qm_xy is empty (omit the field for no PFS)")
	case v.Length == nil:
		return "", errors.New("invalid vector: missing \"length\"")
	case *v.Length <= 0:
		return "", fmt.Errorf("invalid vector: length must be positive, got %d", *v.Length)
	case *v.Length != len(v.Keymat):
		return "", fmt.Errorf("invalid vector: length is %d but keymat has %d bytes", *v.Length, len(v.Keymat))
	}
	got := keymat.Keymat(h, v.SKEYIDd, v.GQMxy, uint8(*v.Protocol), v.SPI, v.NiB, v.NrB, *v.Length)
	return "", Expect("keymat", v.Keymat, got)
}
