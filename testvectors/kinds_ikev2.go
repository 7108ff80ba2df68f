package testvectors

import (
	"encoding/json"
	"fmt"

	v2keymat "github.com/vpnlab/vpnlab/ike/ikev2/keymat"
	"github.com/vpnlab/vpnlab/ike/keymat"
)

func init() { Register("ikev2-kdf", checkIKEv2KDF) }

// ikev2KDFVector is one IKEv2 key derivation known answer in the shape of
// NIST's SP 800-135 IKEv2 KDF vectors (CAVP "ikev2" section of KDF135).
type ikev2KDFVector struct {
	Common
	Hash          string `json:"hash"`
	Ni            Hex    `json:"ni"`
	Nr            Hex    `json:"nr"`
	Gir           Hex    `json:"gir"`
	GirNew        Hex    `json:"gir_new"`
	SPIi          Hex    `json:"spii"`
	SPIr          Hex    `json:"spir"`
	SKEYSEED      Hex    `json:"skeyseed"`
	DKM           Hex    `json:"dkm"`
	DKMChild      Hex    `json:"dkm_child"`
	DKMChildDH    Hex    `json:"dkm_child_dh"`
	SKEYSEEDRekey Hex    `json:"skeyseed_rekey"`
}

// checkIKEv2KDF checks package ike/ikev2/keymat (RFC 7296):
//
//	SKEYSEED        = prf(Ni | Nr, g^ir)
//	DKM             = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)   (len(dkm) bytes)
//	DKM(Child SA)   = prf+(SK_d, Ni | Nr)                     (len(dkm_child) bytes)
//	DKM(Child D-H)  = prf+(SK_d, g^ir (new) | Ni | Nr)        (len(dkm_child_dh) bytes)
//	SKEYSEED(Rekey) = prf(SK_d, g^ir (new) | Ni | Nr)
//
// SK_d being the first prf-length bytes of DKM. Each step starts from the
// vector's expected value of the step before (equal to ours once that one
// matched).
func checkIKEv2KDF(raw json.RawMessage) (string, error) {
	var v ikev2KDFVector
	if err := DecodeVector(raw, &v); err != nil {
		return "", err
	}
	if err := Require("hash", v.Hash, "ni", v.Ni, "nr", v.Nr, "gir", v.Gir, "gir_new", v.GirNew,
		"spii", v.SPIi, "spir", v.SPIr, "skeyseed", v.SKEYSEED, "dkm", v.DKM, "dkm_child", v.DKMChild,
		"dkm_child_dh", v.DKMChildDH, "skeyseed_rekey", v.SKEYSEEDRekey); err != nil {
		return "", err
	}
	h, err := keymat.HashByName(v.Hash)
	if err != nil {
		return "", err
	}
	p, err := v2keymat.PRFByHash(h)
	if err != nil {
		return "", fmt.Errorf("invalid vector: %v", err)
	}
	switch {
	case len(v.SPIi) != 8 || len(v.SPIr) != 8:
		return "", fmt.Errorf("invalid vector: spii and spir must be 8 bytes, got %d and %d", len(v.SPIi), len(v.SPIr))
	case len(v.DKM) < p.KeyLen():
		return "", fmt.Errorf("invalid vector: dkm has %d bytes, SK_d alone needs %d", len(v.DKM), p.KeyLen())
	case len(v.DKMChild) == 0 || len(v.DKMChildDH) == 0:
		return "", fmt.Errorf("invalid vector: dkm_child and dkm_child_dh must not be empty")
	}
	skeyseed, err := v2keymat.SKEYSEED(p, v.Ni, v.Nr, v.Gir)
	if err != nil {
		return "", err
	}
	if err := Expect("skeyseed", v.SKEYSEED, skeyseed); err != nil {
		return "", err
	}
	dkm, err := v2keymat.PRFPlus(p, v.SKEYSEED, len(v.DKM), v.Ni, v.Nr, v.SPIi, v.SPIr)
	if err != nil {
		return "", fmt.Errorf("invalid vector: dkm: %v", err)
	}
	if err := Expect("dkm", v.DKM, dkm); err != nil {
		return "", err
	}
	skd := v.DKM[:p.KeyLen()]
	child, err := v2keymat.ChildKeymat(p, skd, nil, v.Ni, v.Nr, len(v.DKMChild))
	if err != nil {
		return "", fmt.Errorf("invalid vector: dkm_child: %v", err)
	}
	if err := Expect("dkm_child", v.DKMChild, child); err != nil {
		return "", err
	}
	childDH, err := v2keymat.ChildKeymat(p, skd, v.GirNew, v.Ni, v.Nr, len(v.DKMChildDH))
	if err != nil {
		return "", fmt.Errorf("invalid vector: dkm_child_dh: %v", err)
	}
	if err := Expect("dkm_child_dh", v.DKMChildDH, childDH); err != nil {
		return "", err
	}
	rekey, err := v2keymat.RekeySKEYSEED(p, skd, v.GirNew, v.Ni, v.Nr)
	if err != nil {
		return "", err
	}
	return "", Expect("skeyseed_rekey", v.SKEYSEEDRekey, rekey)
}
