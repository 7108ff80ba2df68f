package testvectors

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/vpnlab/vpnlab/ike/auth"
	"github.com/vpnlab/vpnlab/ike/dh"
	"github.com/vpnlab/vpnlab/ike/keymat"
)

func init() {
	Register("prf", checkPRF)
	Register("integrity", checkIntegrity)
	Register("dh", checkDH)
	Register("ikev1-psk-skeyid", checkIKEv1PSKSKEYID)
}

// truncation returns the truncation length in bytes given truncate_bits /
// truncate_bytes (0 = none).
func truncation(bits, bytes int) (int, error) {
	switch {
	case bits < 0 || bytes < 0:
		return 0, errors.New("invalid vector: negative truncation")
	case bits != 0 && bytes != 0 && bits != 8*bytes:
		return 0, errors.New("invalid vector: truncate_bits and truncate_bytes disagree")
	case bits%8 != 0:
		return 0, errors.New("invalid vector: truncate_bits must be a multiple of 8")
	case bits != 0:
		return bits / 8, nil
	}
	return bytes, nil
}

// ---- prf ----

type prfVector struct {
	Common
	Hash          string `json:"hash"`
	Key           Hex    `json:"key"`
	Data          Hex    `json:"data"`
	Output        Hex    `json:"output"`
	TruncateBits  int    `json:"truncate_bits,omitempty"`
	TruncateBytes int    `json:"truncate_bytes,omitempty"`
}

func checkPRF(raw json.RawMessage) (string, error) {
	var v prfVector
	if err := DecodeVector(raw, &v); err != nil {
		return "", err
	}
	if err := Require("hash", v.Hash, "key", v.Key, "data", v.Data, "output", v.Output); err != nil {
		return "", err
	}
	h, err := keymat.HashByName(v.Hash)
	if err != nil {
		return "", err
	}
	n, err := truncation(v.TruncateBits, v.TruncateBytes)
	if err != nil {
		return "", err
	}
	got := keymat.PRF(h, v.Key, v.Data)
	if n > 0 {
		if n > len(got) {
			return "", fmt.Errorf("invalid vector: truncation %d bytes exceeds %s output %d", n, v.Hash, len(got))
		}
		got = got[:n]
	}
	return "", Expect("output", v.Output, got)
}

// ---- integrity ----

type integrityVector struct {
	Common
	Algorithm     string `json:"algorithm,omitempty"`
	Hash          string `json:"hash,omitempty"`
	Key           Hex    `json:"key"`
	Data          Hex    `json:"data"`
	ICV           Hex    `json:"icv"`
	TruncateBits  int    `json:"truncate_bits,omitempty"`
	TruncateBytes int    `json:"truncate_bytes,omitempty"`
}

// integrityByName maps the names of keymat's integrity algorithms to them.
func integrityByName() map[string]keymat.Integrity {
	m := map[string]keymat.Integrity{}
	for _, id := range []uint16{2, 5, 6, 7} {
		if i, err := keymat.IntegrityByIKE(id); err == nil {
			m[i.Name] = i
		}
	}
	return m
}

func checkIntegrity(raw json.RawMessage) (string, error) {
	var v integrityVector
	if err := DecodeVector(raw, &v); err != nil {
		return "", err
	}
	if err := Require("key", v.Key, "data", v.Data, "icv", v.ICV); err != nil {
		return "", err
	}
	n, err := truncation(v.TruncateBits, v.TruncateBytes)
	if err != nil {
		return "", err
	}
	var alg keymat.Integrity
	switch {
	case v.Algorithm != "":
		algs := integrityByName()
		a, ok := algs[strings.ToLower(v.Algorithm)]
		if !ok {
			names := make([]string, 0, len(algs))
			for k := range algs {
				names = append(names, k)
			}
			sort.Strings(names)
			return "", fmt.Errorf("invalid vector: unknown integrity algorithm %q (known: %s; or give hash + truncate_bits)", v.Algorithm, strings.Join(names, ", "))
		}
		if v.Hash != "" {
			if h, err := keymat.HashByName(v.Hash); err != nil || h != a.Hash {
				return "", fmt.Errorf("invalid vector: hash %q does not match algorithm %s", v.Hash, a.Name)
			}
		}
		if n != 0 && n != a.ICVLen {
			return "", fmt.Errorf("invalid vector: truncation %d bytes does not match algorithm %s (%d)", n, a.Name, a.ICVLen)
		}
		alg = a
	case v.Hash != "":
		h, err := keymat.HashByName(v.Hash)
		if err != nil {
			return "", err
		}
		if n == 0 || n > h.Size() {
			return "", fmt.Errorf("invalid vector: %s integrity needs truncate_bits between 8 and %d", v.Hash, 8*h.Size())
		}
		alg = keymat.Integrity{Name: fmt.Sprintf("hmac-%s-%d", keymat.HashName(h), 8*n), Hash: h, KeyLen: h.Size(), ICVLen: n}
	default:
		return "", errors.New("invalid vector: need \"algorithm\" or \"hash\" + \"truncate_bits\"")
	}
	if len(v.ICV) != alg.ICVLen {
		return "", fmt.Errorf("invalid vector: icv is %d bytes, %s produces %d", len(v.ICV), alg.Name, alg.ICVLen)
	}
	return "", Expect("icv", v.ICV, alg.ICV(v.Key, v.Data))
}

// ---- dh ----

type dhVector struct {
	Common
	Group              uint16 `json:"group"`
	Private            Hex    `json:"private"`
	Public             Hex    `json:"public"`
	PeerPrivate        Hex    `json:"peer_private,omitempty"`
	PeerPublic         Hex    `json:"peer_public"`
	Shared             Hex    `json:"shared"`
	IKEv2KEPayload     Hex    `json:"ikev2_ke_payload,omitempty"`
	PeerIKEv2KEPayload Hex    `json:"peer_ikev2_ke_payload,omitempty"`
}

func checkDH(raw json.RawMessage) (string, error) {
	var v dhVector
	if err := DecodeVector(raw, &v); err != nil {
		return "", err
	}
	if v.Group == 0 {
		return "", errors.New("invalid vector: missing \"group\"")
	}
	if err := Require("private", v.Private, "public", v.Public, "peer_public", v.PeerPublic, "shared", v.Shared); err != nil {
		return "", err
	}
	g, err := dh.ByID(v.Group)
	if err != nil {
		return "", err
	}
	k, err := g.KeyFromPrivate(v.Private)
	if err != nil {
		return "", fmt.Errorf("private: %v", err)
	}
	if err := Expect("public", v.Public, k.Public()); err != nil {
		return "", err
	}
	z, err := k.SharedSecret(v.PeerPublic)
	if err != nil {
		return "", fmt.Errorf("shared secret with peer_public: %v", err)
	}
	if err := Expect("shared", v.Shared, z); err != nil {
		return "", err
	}
	if v.PeerPrivate != nil {
		pk, err := g.KeyFromPrivate(v.PeerPrivate)
		if err != nil {
			return "", fmt.Errorf("peer_private: %v", err)
		}
		if err := Expect("peer_public", v.PeerPublic, pk.Public()); err != nil {
			return "", err
		}
		pz, err := pk.SharedSecret(v.Public)
		if err != nil {
			return "", fmt.Errorf("peer's shared secret with public: %v", err)
		}
		if err := Expect("shared (peer side)", v.Shared, pz); err != nil {
			return "", err
		}
	}
	if v.IKEv2KEPayload != nil {
		if err := checkIKEv2KE("ikev2_ke_payload", v.IKEv2KEPayload, v.Group, k.Public()); err != nil {
			return "", err
		}
	}
	if v.PeerIKEv2KEPayload != nil {
		if err := checkIKEv2KE("peer_ikev2_ke_payload", v.PeerIKEv2KEPayload, v.Group, v.PeerPublic); err != nil {
			return "", err
		}
	}
	return "", nil
}

// checkIKEv2KE checks an IKEv2 KE payload (RFC 7296 section 3.4: generic
// header with 16-bit length, 16-bit DH group, 16 reserved bits, KE data)
// against the group and expected KE data.
func checkIKEv2KE(field string, p []byte, group uint16, data []byte) error {
	if len(p) < 8 {
		return fmt.Errorf("%s: %d bytes is shorter than the 8-byte header", field, len(p))
	}
	if l := binary.BigEndian.Uint16(p[2:4]); int(l) != len(p) {
		return fmt.Errorf("%s: header length %d, payload is %d bytes", field, l, len(p))
	}
	if gg := binary.BigEndian.Uint16(p[4:6]); gg != group {
		return fmt.Errorf("%s: DH group %d, expected %d", field, gg, group)
	}
	return Expect(field+" KE data", p[8:], data)
}

// ---- ikev1-psk-skeyid ----

type pskVector struct {
	Common
	Hash    string `json:"hash"`
	CkyI    Hex    `json:"cky_i"`
	CkyR    Hex    `json:"cky_r"`
	Ni      Hex    `json:"ni"`
	Nr      Hex    `json:"nr"`
	Gxy     Hex    `json:"gxy"`
	PSK     Hex    `json:"psk"`
	SKEYID  Hex    `json:"skeyid"`
	SKEYIDd Hex    `json:"skeyid_d"`
	SKEYIDa Hex    `json:"skeyid_a"`
	SKEYIDe Hex    `json:"skeyid_e"`
}

func checkIKEv1PSKSKEYID(raw json.RawMessage) (string, error) {
	var v pskVector
	if err := DecodeVector(raw, &v); err != nil {
		return "", err
	}
	if err := Require("hash", v.Hash, "cky_i", v.CkyI, "cky_r", v.CkyR, "ni", v.Ni, "nr", v.Nr,
		"gxy", v.Gxy, "psk", v.PSK, "skeyid", v.SKEYID, "skeyid_d", v.SKEYIDd,
		"skeyid_a", v.SKEYIDa, "skeyid_e", v.SKEYIDe); err != nil {
		return "", err
	}
	h, err := keymat.HashByName(v.Hash)
	if err != nil {
		return "", err
	}
	if keymat.IKEHashValue(h) == 0 {
		return "", fmt.Errorf("invalid vector: hash %q is not an IKEv1 hash supported by vpnlab", v.Hash)
	}
	// SKEYID through the engines' authentication task (ike/auth), which
	// calls keymat.SKEYIDPreShared: the vectors check what phase 1 uses.
	skeyid := auth.NewPSK(v.PSK).SKEYID(h, v.Ni, v.Nr, v.Gxy)
	if err := Expect("skeyid", v.SKEYID, skeyid); err != nil {
		return "", err
	}
	// Derive from the expected SKEYID (equal to ours at this point).
	k := keymat.DerivePhase1(h, v.SKEYID, v.Gxy, v.CkyI, v.CkyR)
	for _, c := range []struct {
		f         string
		want, got []byte
	}{{"skeyid_d", v.SKEYIDd, k.D}, {"skeyid_a", v.SKEYIDa, k.A}, {"skeyid_e", v.SKEYIDe, k.E}} {
		if err := Expect(c.f, c.want, c.got); err != nil {
			return "", err
		}
	}
	return "", nil
}
