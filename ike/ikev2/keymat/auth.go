package keymat

import (
	"crypto"
	"crypto/hmac"
	"net/netip"

	v1 "github.com/vpnlab/vpnlab/ike/keymat"
)

// keyPad is the constant of RFC 7296 section 2.15: the 17 ASCII octets of
// "Key Pad for IKEv2", without a terminating NUL.
const keyPad = "Key Pad for IKEv2"

// SignedOctets is InitiatorSignedOctets or ResponderSignedOctets of RFC
// 7296 section 2.15:
//
//	InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI
//	MACedIDForI = prf(SK_pi, RestOfInitIDPayload)
//
// message is the whole first message the signer sent (IKE_SA_INIT request
// for the initiator, response for the responder; IKE header included, as
// sent), peerNonce the data of the other side's Nonce payload, skp the
// signer's SK_pi or SK_pr and idBody the signer's ID payload without its
// 4-byte generic payload header (IDi' / IDr': ID Type, 3 reserved octets,
// identification data). Signatures sign these octets; PSKAuth macs them.
func SignedOctets(p PRF, message, peerNonce, skp, idBody []byte) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(message)+len(peerNonce)+p.Size())
	out = append(out, message...)
	out = append(out, peerNonce...)
	m := hmac.New(p.Hash.New, skp)
	m.Write(idBody)
	return m.Sum(out), nil
}

// PSKAuth is the AUTH payload data for shared-key authentication (method
// 2), RFC 7296 section 2.15:
//
//	AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)
//
// with the signed octets assembled from message, peerNonce, skp and idBody
// as in SignedOctets.
func PSKAuth(p PRF, psk, message, peerNonce, skp, idBody []byte) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	mac := hmac.New(p.Hash.New, skp)
	mac.Write(idBody)
	macedID := mac.Sum(nil)
	m := hmac.New(p.Hash.New, p.Sum(psk, []byte(keyPad)))
	m.Write(message)
	m.Write(peerNonce)
	m.Write(macedID)
	return m.Sum(nil), nil
}

// VerifyPSKAuth reports, in constant time, whether auth is the PSKAuth of
// the other inputs.
func VerifyPSKAuth(p PRF, auth, psk, message, peerNonce, skp, idBody []byte) bool {
	want, err := PSKAuth(p, psk, message, peerNonce, skp, idBody)
	return err == nil && hmac.Equal(auth, want)
}

// NATDHash is the data of a NAT_DETECTION_SOURCE_IP or
// NAT_DETECTION_DESTINATION_IP notification, RFC 7296 section 2.23:
// SHA-1(SPIi | SPIr | IP | Port), always SHA-1 whatever the prf, with the
// IP as 4 (IPv4, including IPv4-mapped IPv6) or 16 octets and the port as
// 2 octets in network order (the same construction as IKEv1's RFC 3947
// hash, so ike/keymat computes it). In IKE_SA_INIT's request SPIr is zero.
func NATDHash(spii, spir []byte, addr netip.AddrPort) []byte {
	return v1.NATDHash(crypto.SHA1, spii, spir, addr)
}
