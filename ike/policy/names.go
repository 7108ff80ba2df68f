package policy

import (
	"fmt"

	"github.com/vpnlab/vpnlab/ike/dh"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/keymat"
)

// String names the proposal the way strongSwan does: aes128-sha256-modp2048.
// With GCM: aes256gcm16-prfsha256-modp2048 (strongSwan's IKEv2 AEAD form).
func (p Phase1Proposal) String() string {
	if p.GCM {
		return fmt.Sprintf("aes%dgcm16-prf%s-%s", p.EncKeyBits, keymat.HashName(p.Hash), dh.Name(p.DHGroup))
	}
	return fmt.Sprintf("aes%d-%s-%s", p.EncKeyBits, keymat.HashName(p.Hash), dh.Name(p.DHGroup))
}

// String names the proposal: esp-aes128-sha256-modp2048, esp-aes256gcm16, ah-sha256.
func (p Phase2Proposal) String() string {
	s := "esp"
	if p.Protocol == isakmp.ProtoAH {
		s = "ah"
	}
	switch p.Encryption {
	case isakmp.ESPAESCBC:
		s += fmt.Sprintf("-aes%d", p.EncKeyBits)
	case isakmp.ESPAESGCM16:
		s += fmt.Sprintf("-aes%dgcm16", p.EncKeyBits)
	case isakmp.ESPNull:
		s += "-null"
	}
	if p.Integrity != 0 {
		s += "-" + IntegrityName(p.Integrity)
	}
	if p.PFSGroup != 0 {
		s += "-" + dh.Name(p.PFSGroup)
	}
	return s
}

// IntegrityName names an IPsec integrity algorithm (the IKEv1 attribute
// value, isakmp.AuthHMACSHA1...) as proposals print it: sha1, sha256...
func IntegrityName(v uint16) string {
	switch v {
	case isakmp.AuthHMACSHA1:
		return "sha1"
	case isakmp.AuthHMACSHA2256:
		return "sha256"
	case isakmp.AuthHMACSHA2384:
		return "sha384"
	case isakmp.AuthHMACSHA2512:
		return "sha512"
	case isakmp.AuthHMACMD5:
		return "md5"
	}
	return fmt.Sprintf("auth%d", v)
}
