package decode

import (
	"crypto/hmac"
	"fmt"
	"strings"

	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/keymat"
)

// natdVerdict checks a message's NAT-D payloads (RFC 3947 section 3.2:
// the first is the hash of the destination address:port as the sender
// knows it, the others of its own source) against the addresses seen in
// this capture.
func (sa *ikeSA) natdVerdict(m *ikeMsg) string {
	var hs [][]byte
	for _, p := range m.payloads {
		if n, ok := p.(*isakmp.NATD); ok {
			hs = append(hs, n.Hash)
		}
	}
	if len(hs) == 0 {
		return ""
	}
	h := sa.st.hash
	if h == 0 || !h.Available() {
		return "NAT-D present (not checked: the chosen hash is unknown)"
	}
	rc := m.h.RCookie
	dstOK := hmac.Equal(hs[0], keymat.NATDHash(h, sa.icookie[:], rc[:], m.p.dst))
	srcOK := false
	for _, x := range hs[1:] {
		if hmac.Equal(x, keymat.NATDHash(h, sa.icookie[:], rc[:], m.p.src)) {
			srcOK = true
		}
	}
	who := map[bool]string{true: "initiator", false: "responder"}
	var v []string
	if !srcOK {
		v = append(v, fmt.Sprintf("the %s's own address is not %s as seen here: it is behind a NAT (or fakes NAT-D to force ESP in UDP, as strongSwan's kernel-libipsec does)", who[m.fromI], m.p.src))
	}
	if !dstOK {
		v = append(v, fmt.Sprintf("the %s sent to another address than %s seen here: a NAT in front of the %s (or this capture is behind it)", who[m.fromI], m.p.dst, who[!m.fromI]))
	}
	if len(v) == 0 {
		return "NAT-D: no NAT between the " + who[m.fromI] + " and this capture point"
	}
	return "NAT-D: " + strings.Join(v, "; ")
}

// HashCheck is the outcome of verifying HASH_I or HASH_R.
type HashCheck struct {
	Hash    string `json:"hash"`             // HASH_I or HASH_R
	Result  string `json:"result"`           // verified, mismatch, not-verifiable
	PSK     string `json:"psk,omitempty"`    // the PSK's source (file:line) that verified
	Reason  string `json:"reason,omitempty"` // why not verifiable
	Message string `json:"message"`
}

// verifyAuth checks HASH_I and HASH_R against every candidate PSK
// (RFC 2409 section 5: SKEYID = prf(PSK, Ni_b | Nr_b), HASH_I =
// prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b), HASH_R
// likewise with the roles swapped). A pre-shared key and the capture are
// enough: no Diffie-Hellman secret is needed for these two hashes.
func (sa *ikeSA) verifyAuth(psks []PSK) []HashCheck {
	var out []HashCheck
	for _, initiator := range []bool{true, false} {
		name, got, id := "HASH_R", sa.hashR, sa.idr
		if initiator {
			name, got, id = "HASH_I", sa.hashI, sa.idi
		}
		if got == nil {
			continue
		}
		c := HashCheck{Hash: name}
		switch {
		case len(psks) == 0:
			c.Result, c.Reason = "not-verifiable", "needs the pre-shared key (--psk): the key log's encryption key cannot verify it"
		case sa.st.auth != isakmp.AuthPSK && sa.st.auth != 65001 && sa.st.auth != 65002:
			c.Result, c.Reason = "not-verifiable", "authentication is not by pre-shared key"
		case sa.st.hash == 0 || !sa.st.hash.Available():
			c.Result, c.Reason = "not-verifiable", "the chosen hash is unknown or unsupported"
		case sa.offered == nil || id == nil || sa.gxi == nil || sa.gxr == nil || sa.ni == nil || sa.nr == nil:
			c.Result, c.Reason = "not-verifiable", "the capture lacks SA, KE, nonce or ID payloads of this exchange"
		default:
			c.Result = "mismatch"
			for _, p := range psks {
				if hmac.Equal(got, sa.authHash(p.Secret, initiator, id)) {
					c.Result, c.PSK = "verified", p.Source
					break
				}
			}
		}
		c.Message = hashMessage(c, len(psks))
		out = append(out, c)
	}
	return out
}

func (sa *ikeSA) authHash(psk []byte, initiator bool, id *isakmp.ID) []byte {
	h := sa.st.hash
	skeyid := keymat.SKEYIDPreShared(h, psk, sa.ni, sa.nr)
	saib := sa.offered.Raw
	if saib == nil {
		saib = sa.offered.Body()
	}
	if initiator {
		return keymat.HashI(h, skeyid, sa.gxi, sa.gxr, sa.icookie[:], sa.rcookie[:], saib, id.Body())
	}
	return keymat.HashR(h, skeyid, sa.gxr, sa.gxi, sa.rcookie[:], sa.icookie[:], saib, id.Body())
}

func hashMessage(c HashCheck, n int) string {
	switch c.Result {
	case "verified":
		return fmt.Sprintf("%s verifies with the pre-shared key of %s", c.Hash, c.PSK)
	case "mismatch":
		return fmt.Sprintf("%s does not verify with any of the %d pre-shared key(s) given: pre-shared key mismatch", c.Hash, n)
	}
	return fmt.Sprintf("%s not verified: %s", c.Hash, c.Reason)
}
