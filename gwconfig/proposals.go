package gwconfig

import (
	"crypto"
	"fmt"
	"strings"

	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/policy"
)

// dhGroup is a Diffie-Hellman group with its strongSwan keyword.
type dhGroup struct {
	num  uint16
	name string
}

// dhGroups lists every group this harness knows, in number order.
var dhGroups = []dhGroup{
	{2, "modp1024"},
	{5, "modp1536"},
	{14, "modp2048"},
	{15, "modp3072"},
	{16, "modp4096"},
	{17, "modp6144"},
	{18, "modp8192"},
	{19, "ecp256"},
	{20, "ecp384"},
	{21, "ecp521"},
	{22, "modp1024s160"},
	{23, "modp2048s224"},
	{24, "modp2048s256"},
}

func dhGroupByName(s string) (uint16, bool) {
	for _, g := range dhGroups {
		if g.name == s {
			return g.num, true
		}
	}
	return 0, false
}

func dhGroupName(n uint16) string {
	for _, g := range dhGroups {
		if g.num == n {
			return g.name
		}
	}
	return fmt.Sprintf("dh%d", n)
}

func knownDHGroup(n uint16) bool {
	for _, g := range dhGroups {
		if g.num == n {
			return true
		}
	}
	return false
}

// hashes maps strongSwan integrity keywords to phase 1 hashes.
var hashes = []struct {
	name string
	aws  string
	h    crypto.Hash
	auth uint16 // phase 2 HMAC (isakmp.AuthHMAC*)
}{
	{"sha1", "SHA1", crypto.SHA1, isakmp.AuthHMACSHA1},
	{"sha256", "SHA2-256", crypto.SHA256, isakmp.AuthHMACSHA2256},
	{"sha384", "SHA2-384", crypto.SHA384, isakmp.AuthHMACSHA2384},
	{"sha512", "SHA2-512", crypto.SHA512, isakmp.AuthHMACSHA2512},
}

func hashName(h crypto.Hash) string {
	for _, x := range hashes {
		if x.h == h {
			return x.name
		}
	}
	return fmt.Sprintf("hash%d", int(h))
}

func authName(a uint16) string {
	for _, x := range hashes {
		if x.auth == a {
			return x.name
		}
	}
	if a == isakmp.AuthHMACMD5 {
		return "md5"
	}
	return fmt.Sprintf("auth%d", a)
}

func hashAWSName(h crypto.Hash) string {
	for _, x := range hashes {
		if x.h == h {
			return x.aws
		}
	}
	return hashName(h)
}

func authAWSName(a uint16) string {
	for _, x := range hashes {
		if x.auth == a {
			return x.aws
		}
	}
	return authName(a)
}

// ParsePhase1Proposal parses a strongSwan-style phase 1 proposal
// "ENC-HASH-GROUP", e.g. "aes128-sha1-modp2048" or "aes256-sha256-ecp256",
// or with AES-GCM (IKEv2 only) "AEAD-prfHASH-GROUP", e.g.
// "aes256gcm16-prfsha256-modp2048" (strongSwan's IKEv2 AEAD syntax: no
// integrity, the PRF named). ENC is aes128, aes192 or aes256 ("aes" means
// aes128), AEAD aes128gcm16, aes192gcm16 or aes256gcm16 ("aesgcm16" means
// aes128gcm16), HASH is sha1, sha256, sha384 or sha512 (with AES-CBC both
// the integrity and the PRF, as HMAC), GROUP is one of modp1024 (2),
// modp1536 (5), modp2048 (14), modp3072 (15), modp4096 (16), modp6144 (17),
// modp8192 (18), ecp256 (19), ecp384 (20), ecp521 (21), modp1024s160 (22),
// modp2048s224 (23), modp2048s256 (24). Matching is case-insensitive.
func ParsePhase1Proposal(s string) (policy.Phase1Proposal, error) {
	var p policy.Phase1Proposal
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "-")
	if len(parts) != 3 {
		return p, fmt.Errorf("%q: want ENC-HASH-GROUP, e.g. aes128-sha1-modp2048, or AEAD-prfHASH-GROUP, e.g. aes256gcm16-prfsha256-modp2048", s)
	}
	switch parts[0] {
	case "aes", "aes128":
		p.EncKeyBits = 128
	case "aes192":
		p.EncKeyBits = 192
	case "aes256":
		p.EncKeyBits = 256
	case "aesgcm16", "aes128gcm16":
		p.EncKeyBits, p.GCM = 128, true
	case "aes192gcm16":
		p.EncKeyBits, p.GCM = 192, true
	case "aes256gcm16":
		p.EncKeyBits, p.GCM = 256, true
	default:
		return p, fmt.Errorf("%q: unknown encryption %q (want aes128, aes192, aes256, aes128gcm16, aes192gcm16 or aes256gcm16)", s, parts[0])
	}
	hash := parts[1]
	switch {
	case p.GCM && !strings.HasPrefix(hash, "prf"):
		return p, fmt.Errorf("%q: AES-GCM has no integrity algorithm; name the PRF, e.g. %s-prf%s-%s", s, parts[0], hash, parts[2])
	case !p.GCM && strings.HasPrefix(hash, "prf"):
		return p, fmt.Errorf("%q: with AES-CBC the hash is both integrity and PRF; write %s-%s-%s", s, parts[0], strings.TrimPrefix(hash, "prf"), parts[2])
	}
	hash = strings.TrimPrefix(hash, "prf")
	found := false
	for _, h := range hashes {
		if h.name == hash {
			p.Hash, found = h.h, true
		}
	}
	if !found {
		return p, fmt.Errorf("%q: unknown integrity/PRF %q (want sha1, sha256, sha384 or sha512)", s, parts[1])
	}
	g, ok := dhGroupByName(parts[2])
	if !ok {
		return p, fmt.Errorf("%q: unknown DH group %q (want modp1024, modp1536, modp2048, modp3072, modp4096, modp6144, modp8192, ecp256, ecp384, ecp521, modp1024s160, modp2048s224 or modp2048s256)", s, parts[2])
	}
	p.DHGroup = g
	return p, nil
}

// FormatPhase1 returns the strongSwan-style name of a phase 1 proposal, e.g.
// "aes128-sha1-modp2048" or "aes256gcm16-prfsha256-modp2048". It is the
// inverse of ParsePhase1Proposal.
func FormatPhase1(p policy.Phase1Proposal) string {
	if p.GCM {
		return fmt.Sprintf("aes%dgcm16-prf%s-%s", p.EncKeyBits, hashName(p.Hash), dhGroupName(p.DHGroup))
	}
	return fmt.Sprintf("aes%d-%s-%s", p.EncKeyBits, hashName(p.Hash), dhGroupName(p.DHGroup))
}

// ParsePhase2Proposal parses a strongSwan-style quick mode proposal:
//
//	esp-ENC-INTEG[-GROUP]   ENC aes128|aes192|aes256|null, e.g. esp-aes128-sha256-modp2048
//	esp-AEAD[-GROUP]        AEAD aes128gcm16|aes192gcm16|aes256gcm16 (no integrity)
//	ah-INTEG[-GROUP]        e.g. ah-sha256
//
// INTEG is sha1, sha256, sha384 or sha512; the optional GROUP (as in
// ParsePhase1Proposal) is the PFS group, none when absent. "aes" means aes128
// and "aesgcm16" aes128gcm16. Matching is case-insensitive.
func ParsePhase2Proposal(s string) (policy.Phase2Proposal, error) {
	var p policy.Phase2Proposal
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "-")
	if len(parts) < 2 {
		return p, fmt.Errorf("%q: want esp-ENC[-INTEG][-GROUP] or ah-INTEG[-GROUP], e.g. esp-aes128-sha1-modp2048", s)
	}
	rest := parts[1:]
	switch parts[0] {
	case "esp":
		p.Protocol = isakmp.ProtoESP
		enc := rest[0]
		rest = rest[1:]
		aead := false
		switch enc {
		case "aes", "aes128":
			p.Encryption, p.EncKeyBits = isakmp.ESPAESCBC, 128
		case "aes192":
			p.Encryption, p.EncKeyBits = isakmp.ESPAESCBC, 192
		case "aes256":
			p.Encryption, p.EncKeyBits = isakmp.ESPAESCBC, 256
		case "aesgcm16", "aes128gcm16":
			p.Encryption, p.EncKeyBits, aead = isakmp.ESPAESGCM16, 128, true
		case "aes192gcm16":
			p.Encryption, p.EncKeyBits, aead = isakmp.ESPAESGCM16, 192, true
		case "aes256gcm16":
			p.Encryption, p.EncKeyBits, aead = isakmp.ESPAESGCM16, 256, true
		case "null":
			p.Encryption, p.EncKeyBits = isakmp.ESPNull, 0
		default:
			return p, fmt.Errorf("%q: unknown ESP encryption %q (want aes128, aes192, aes256, aes128gcm16, aes192gcm16, aes256gcm16 or null)", s, enc)
		}
		if aead {
			if len(rest) > 0 && isHashName(rest[0]) {
				return p, fmt.Errorf("%q: AES-GCM carries its own integrity; drop %q", s, rest[0])
			}
		} else {
			if len(rest) == 0 || !isHashName(rest[0]) {
				return p, fmt.Errorf("%q: ESP with %s needs an integrity algorithm (sha1, sha256, sha384 or sha512)", s, enc)
			}
			p.Integrity = authByName(rest[0])
			rest = rest[1:]
		}
	case "ah":
		p.Protocol = isakmp.ProtoAH
		if !isHashName(rest[0]) {
			return p, fmt.Errorf("%q: unknown AH integrity %q (want sha1, sha256, sha384 or sha512)", s, rest[0])
		}
		p.Integrity = authByName(rest[0])
		rest = rest[1:]
	default:
		return p, fmt.Errorf("%q: unknown protocol %q (want esp or ah)", s, parts[0])
	}
	switch len(rest) {
	case 0:
	case 1:
		g, ok := dhGroupByName(rest[0])
		if !ok {
			return p, fmt.Errorf("%q: unknown PFS group %q", s, rest[0])
		}
		p.PFSGroup = g
	default:
		return p, fmt.Errorf("%q: unexpected %q after the PFS group", s, strings.Join(rest[1:], "-"))
	}
	return p, nil
}

func isHashName(s string) bool { return authByName(s) != 0 }

func authByName(s string) uint16 {
	for _, h := range hashes {
		if h.name == s {
			return h.auth
		}
	}
	return 0
}

// FormatPhase2 returns the strongSwan-style name of a quick mode proposal,
// e.g. "esp-aes128-sha256-modp2048", "esp-aes256gcm16" or "ah-sha256". It is
// the inverse of ParsePhase2Proposal.
func FormatPhase2(p policy.Phase2Proposal) string {
	var b strings.Builder
	switch p.Protocol {
	case isakmp.ProtoESP:
		b.WriteString("esp-")
		switch p.Encryption {
		case isakmp.ESPAESCBC:
			fmt.Fprintf(&b, "aes%d", p.EncKeyBits)
		case isakmp.ESPAESGCM16:
			fmt.Fprintf(&b, "aes%dgcm16", p.EncKeyBits)
		case isakmp.ESPNull:
			b.WriteString("null")
		default:
			fmt.Fprintf(&b, "enc%d", p.Encryption)
		}
		if p.Integrity != 0 {
			b.WriteString("-" + authName(p.Integrity))
		}
	case isakmp.ProtoAH:
		b.WriteString("ah-" + authName(p.Integrity))
	default:
		fmt.Fprintf(&b, "proto%d", p.Protocol)
	}
	if p.PFSGroup != 0 {
		b.WriteString("-" + dhGroupName(p.PFSGroup))
	}
	return b.String()
}

// AWS-style algorithm names (tunnel options).

// encName returns the AWS name of a phase 2 ESP cipher ("AES128-GCM-16").
func p2EncAWSName(enc uint8, bits int) string {
	switch enc {
	case isakmp.ESPAESCBC:
		return fmt.Sprintf("AES%d", bits)
	case isakmp.ESPAESGCM16:
		return fmt.Sprintf("AES%d-GCM-16", bits)
	case isakmp.ESPNull:
		return "NULL"
	}
	return fmt.Sprintf("enc%d", enc)
}

// parseAWSEnc parses an AWS encryption name (case-insensitive): AES128,
// AES192, AES256, AES128-GCM-16, AES192-GCM-16, AES256-GCM-16, NULL.
func parseAWSEnc(s string) (enc uint8, bits int, ok bool) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "AES128":
		return isakmp.ESPAESCBC, 128, true
	case "AES192":
		return isakmp.ESPAESCBC, 192, true
	case "AES256":
		return isakmp.ESPAESCBC, 256, true
	case "AES128-GCM-16":
		return isakmp.ESPAESGCM16, 128, true
	case "AES192-GCM-16":
		return isakmp.ESPAESGCM16, 192, true
	case "AES256-GCM-16":
		return isakmp.ESPAESGCM16, 256, true
	case "NULL":
		return isakmp.ESPNull, 0, true
	}
	return 0, 0, false
}

// parseAWSIntegrity parses SHA1, SHA2-256, SHA2-384, SHA2-512.
func parseAWSIntegrity(s string) (int, bool) {
	u := strings.ToUpper(strings.TrimSpace(s))
	for i, h := range hashes {
		if h.aws == u {
			return i, true
		}
	}
	return 0, false
}
