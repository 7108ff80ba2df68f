package isakmp

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
)

var exchangeNames = map[ExchangeType]string{
	ExchangeBase:               "Base",
	ExchangeIdentityProtection: "Main Mode",
	ExchangeAuthOnly:           "Authentication Only",
	ExchangeAggressive:         "Aggressive Mode",
	ExchangeInformational:      "Informational",
	ExchangeTransaction:        "Transaction",
	ExchangeQuickMode:          "Quick Mode",
	ExchangeNewGroupMode:       "New Group Mode",
}

func (t ExchangeType) String() string {
	if s, ok := exchangeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("ExchangeType(%d)", uint8(t))
}

// Payload names follow the notation of RFC 2409 section 5 (SA, KE, HASH_I...).
var payloadNames = map[PayloadType]string{
	PayloadNone:       "NONE",
	PayloadSA:         "SA",
	PayloadProposal:   "P",
	PayloadTransform:  "T",
	PayloadKE:         "KE",
	PayloadID:         "ID",
	PayloadCert:       "CERT",
	PayloadCertReq:    "CR",
	PayloadHash:       "HASH",
	PayloadSig:        "SIG",
	PayloadNonce:      "NONCE",
	PayloadNotify:     "N",
	PayloadDelete:     "D",
	PayloadVendorID:   "VID",
	PayloadNATD:       "NAT-D",
	PayloadNATOA:      "NAT-OA",
	PayloadNATDDraft:  "NAT-D(draft)",
	PayloadNATOADraft: "NAT-OA(draft)",
}

func (t PayloadType) String() string {
	if s, ok := payloadNames[t]; ok {
		return s
	}
	return fmt.Sprintf("PayloadType(%d)", uint8(t))
}

// Notify names as written in RFC 2408 3.14.1, RFC 2407 4.6.3 and RFC 3706.
var notifyNames = map[NotifyType]string{
	NotifyInvalidPayloadType:      "INVALID-PAYLOAD-TYPE",
	NotifyDOINotSupported:         "DOI-NOT-SUPPORTED",
	NotifySituationNotSupported:   "SITUATION-NOT-SUPPORTED",
	NotifyInvalidCookie:           "INVALID-COOKIE",
	NotifyInvalidMajorVersion:     "INVALID-MAJOR-VERSION",
	NotifyInvalidMinorVersion:     "INVALID-MINOR-VERSION",
	NotifyInvalidExchangeType:     "INVALID-EXCHANGE-TYPE",
	NotifyInvalidFlags:            "INVALID-FLAGS",
	NotifyInvalidMessageID:        "INVALID-MESSAGE-ID",
	NotifyInvalidProtocolID:       "INVALID-PROTOCOL-ID",
	NotifyInvalidSPI:              "INVALID-SPI",
	NotifyInvalidTransformID:      "INVALID-TRANSFORM-ID",
	NotifyAttributesNotSupported:  "ATTRIBUTES-NOT-SUPPORTED",
	NotifyNoProposalChosen:        "NO-PROPOSAL-CHOSEN",
	NotifyBadProposalSyntax:       "BAD-PROPOSAL-SYNTAX",
	NotifyPayloadMalformed:        "PAYLOAD-MALFORMED",
	NotifyInvalidKeyInformation:   "INVALID-KEY-INFORMATION",
	NotifyInvalidIDInformation:    "INVALID-ID-INFORMATION",
	NotifyInvalidCertEncoding:     "INVALID-CERT-ENCODING",
	NotifyInvalidCertificate:      "INVALID-CERTIFICATE",
	NotifyCertTypeUnsupported:     "CERT-TYPE-UNSUPPORTED",
	NotifyInvalidCertAuthority:    "INVALID-CERT-AUTHORITY",
	NotifyInvalidHashInformation:  "INVALID-HASH-INFORMATION",
	NotifyAuthenticationFailed:    "AUTHENTICATION-FAILED",
	NotifyInvalidSignature:        "INVALID-SIGNATURE",
	NotifyAddressNotification:     "ADDRESS-NOTIFICATION",
	NotifySALifetime:              "NOTIFY-SA-LIFETIME",
	NotifyCertificateUnavailable:  "CERTIFICATE-UNAVAILABLE",
	NotifyUnsupportedExchangeType: "UNSUPPORTED-EXCHANGE-TYPE",
	NotifyUnequalPayloadLengths:   "UNEQUAL-PAYLOAD-LENGTHS",
	NotifyConnected:               "CONNECTED",
	NotifyResponderLifetime:       "RESPONDER-LIFETIME",
	NotifyReplayStatus:            "REPLAY-STATUS",
	NotifyInitialContact:          "INITIAL-CONTACT",
	NotifyRUThere:                 "R-U-THERE",
	NotifyRUThereAck:              "R-U-THERE-ACK",
}

func (t NotifyType) String() string {
	if s, ok := notifyNames[t]; ok {
		return s
	}
	return fmt.Sprintf("NotifyType(%d)", uint16(t))
}

// IsError reports whether t is in the error range 1-16383 (RFC 2408 3.14.1).
func (t NotifyType) IsError() bool { return t >= 1 && t < 16384 }

var idTypeNames = map[IDType]string{
	IDIPv4Addr:       "ID_IPV4_ADDR",
	IDFQDN:           "ID_FQDN",
	IDUserFQDN:       "ID_USER_FQDN",
	IDIPv4AddrSubnet: "ID_IPV4_ADDR_SUBNET",
	IDIPv6Addr:       "ID_IPV6_ADDR",
	IDIPv6AddrSubnet: "ID_IPV6_ADDR_SUBNET",
	IDIPv4AddrRange:  "ID_IPV4_ADDR_RANGE",
	IDIPv6AddrRange:  "ID_IPV6_ADDR_RANGE",
	IDDERASN1DN:      "ID_DER_ASN1_DN",
	IDDERASN1GN:      "ID_DER_ASN1_GN",
	IDKeyID:          "ID_KEY_ID",
}

func (t IDType) String() string {
	if s, ok := idTypeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("IDType(%d)", uint8(t))
}

// ProtocolName names an IPsec DOI protocol ID (RFC 2407 4.4.1).
func ProtocolName(p uint8) string {
	switch p {
	case ProtoISAKMP:
		return "ISAKMP"
	case ProtoAH:
		return "AH"
	case ProtoESP:
		return "ESP"
	case ProtoIPComp:
		return "IPCOMP"
	}
	return fmt.Sprintf("proto(%d)", p)
}

func flagString(f uint8) string {
	var s []string
	if f&FlagEncryption != 0 {
		s = append(s, "E")
	}
	if f&FlagCommit != 0 {
		s = append(s, "C")
	}
	if f&FlagAuthOnly != 0 {
		s = append(s, "A")
	}
	if r := f &^ (FlagEncryption | FlagCommit | FlagAuthOnly); r != 0 {
		s = append(s, fmt.Sprintf("%#x", r))
	}
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, "")
}

// String gives a short one-line form for logs, e.g.
// "Main Mode i=069cf174ba04d16c r=0000000000000000 mid=00000000 flags=- np=SA len=180".
func (h Header) String() string {
	return fmt.Sprintf("%s i=%x r=%x mid=%08x flags=%s np=%s len=%d",
		h.Exchange, h.ICookie, h.RCookie, h.MessageID, flagString(h.Flags), h.NextPayload, h.Length)
}

// Group names (RFC 2409 appendix A, RFC 3526, RFC 5903, IANA).
var groupNames = map[uint64]string{
	1: "modp768", 2: "modp1024", 5: "modp1536", 14: "modp2048", 15: "modp3072",
	16: "modp4096", 17: "modp6144", 18: "modp8192", 19: "ecp256", 20: "ecp384",
	21: "ecp521", 22: "modp1024s160", 23: "modp2048s224", 24: "modp2048s256",
	25: "ecp192", 26: "ecp224", 27: "ecp224bp", 28: "ecp256bp", 29: "ecp384bp",
	30: "ecp512bp", 31: "curve25519", 32: "curve448",
}

// Phase 1 attribute classes and values, RFC 2409 appendix A.
var p1AttrNames = map[uint16]string{
	1: "Encryption-Algorithm", 2: "Hash-Algorithm", 3: "Authentication-Method",
	4: "Group-Description", 5: "Group-Type", 6: "Group-Prime", 7: "Group-Generator-One",
	8: "Group-Generator-Two", 9: "Group-Curve-A", 10: "Group-Curve-B", 11: "Life-Type",
	12: "Life-Duration", 13: "PRF", 14: "Key-Length", 15: "Field-Size", 16: "Group-Order",
}

var p1Values = map[uint16]map[uint64]string{
	AttrEncryptionAlgorithm: {1: "DES-CBC", 2: "IDEA-CBC", 3: "Blowfish-CBC", 4: "RC5-R16-B64-CBC", 5: "3DES-CBC", 6: "CAST-CBC", 7: "AES-CBC", 8: "Camellia-CBC"},
	AttrHashAlgorithm:       {1: "MD5", 2: "SHA", 3: "Tiger", 4: "SHA2-256", 5: "SHA2-384", 6: "SHA2-512"},
	AttrAuthenticationMethod: {1: "Pre-shared key", 2: "DSS signatures", 3: "RSA signatures", 4: "RSA encryption",
		5: "Revised RSA encryption", 9: "ECDSA-SHA256", 10: "ECDSA-SHA384", 11: "ECDSA-SHA512",
		65001: "XAUTHInitPreShared", 65002: "XAUTHRespPreShared", 65005: "XAUTHInitRSA", 65006: "XAUTHRespRSA"},
	AttrGroupDescription: groupNames,
	AttrLifeType:         {1: "Seconds", 2: "Kilobytes"},
}

// Phase 2 (IPsec DOI) attribute classes and values, RFC 2407 4.5.
var p2AttrNames = map[uint16]string{
	1: "SA-Life-Type", 2: "SA-Life-Duration", 3: "Group-Description", 4: "Encapsulation-Mode",
	5: "Authentication-Algorithm", 6: "Key-Length", 7: "Key-Rounds", 8: "Compress-Dictionary-Size",
	9: "Compress-Private-Algorithm",
}

var p2Values = map[uint16]map[uint64]string{
	AttrSALifeType: {1: "Seconds", 2: "Kilobytes"},
	AttrGroup:      groupNames,
	AttrEncapsulationMode: {1: "Tunnel", 2: "Transport", 3: "UDP-Encapsulated-Tunnel", 4: "UDP-Encapsulated-Transport",
		61443: "UDP-Encapsulated-Tunnel(draft)", 61444: "UDP-Encapsulated-Transport(draft)"},
	AttrAuthAlgorithm: {1: "HMAC-MD5", 2: "HMAC-SHA", 3: "DES-MAC", 4: "KPDK", 5: "HMAC-SHA2-256", 6: "HMAC-SHA2-384", 7: "HMAC-SHA2-512", 9: "AES-XCBC-MAC"},
}

var espTransformNames = map[uint8]string{
	1: "ESP_DES_IV64", 2: "ESP_DES", 3: "ESP_3DES", 4: "ESP_RC5", 5: "ESP_IDEA", 6: "ESP_CAST",
	7: "ESP_BLOWFISH", 8: "ESP_3IDEA", 9: "ESP_DES_IV32", 10: "ESP_RC4", 11: "ESP_NULL",
	12: "ESP_AES_CBC", 13: "ESP_AES_CTR", 14: "ESP_AES_CCM_8", 15: "ESP_AES_CCM_12",
	16: "ESP_AES_CCM_16", 18: "ESP_AES_GCM_8", 19: "ESP_AES_GCM_12", 20: "ESP_AES_GCM_16",
	22: "ESP_CAMELLIA", 23: "ESP_NULL_AUTH_AES_GMAC",
}

var ahTransformNames = map[uint8]string{
	2: "AH_MD5", 3: "AH_SHA", 4: "AH_DES", 5: "AH_SHA2_256", 6: "AH_SHA2_384", 7: "AH_SHA2_512",
}

// TransformName names a transform ID in the context of a protocol.
func TransformName(proto, id uint8) string {
	var s string
	switch proto {
	case ProtoISAKMP:
		if id == TransformKeyIKE {
			s = "KEY_IKE"
		}
	case ProtoESP:
		s = espTransformNames[id]
	case ProtoAH:
		s = ahTransformNames[id]
	}
	if s == "" {
		return fmt.Sprintf("transform(%d)", id)
	}
	return s
}

// AttrString formats an attribute in the context of a protocol (ISAKMP: phase
// 1 classes of RFC 2409; ESP/AH: IPsec DOI classes of RFC 2407).
func AttrString(proto uint8, a Attribute) string {
	names, values := p2AttrNames, p2Values
	if proto == ProtoISAKMP {
		names, values = p1AttrNames, p1Values
	}
	name := names[a.Type]
	if name == "" {
		name = fmt.Sprintf("attr(%d)", a.Type)
	}
	v, err := a.Uint()
	if err != nil {
		return fmt.Sprintf("%s=%x", name, a.Data)
	}
	if vn, ok := values[a.Type][v]; ok {
		return name + "=" + vn
	}
	return fmt.Sprintf("%s=%d", name, v)
}

func hexOrDash(b []byte) string {
	if len(b) == 0 {
		return "-"
	}
	return hex.EncodeToString(b)
}

// Describe returns a one-line human summary of a payload for logs.
func Describe(p Payload) string {
	if v := reflect.ValueOf(p); v.Kind() == reflect.Pointer && v.IsNil() {
		return fmt.Sprintf("%T <nil>", p)
	}
	switch p := p.(type) {
	case nil:
		return "<nil>"
	case *SA:
		if p == nil {
			return "SA <nil>"
		}
		var b strings.Builder
		fmt.Fprintf(&b, "SA doi=%d sit=%#x", p.DOI, p.Situation)
		for _, pr := range p.Proposals {
			fmt.Fprintf(&b, " [P#%d %s spi=%s", pr.Number, ProtocolName(pr.ProtocolID), hexOrDash(pr.SPI))
			for _, t := range pr.Transforms {
				fmt.Fprintf(&b, " T#%d %s(", t.Number, TransformName(pr.ProtocolID, t.ID))
				for i, a := range t.Attributes {
					if i > 0 {
						b.WriteString(", ")
					}
					b.WriteString(AttrString(pr.ProtocolID, a))
				}
				b.WriteString(")")
			}
			b.WriteString("]")
		}
		return b.String()
	case *KE:
		return fmt.Sprintf("KE %d bytes", len(p.Data))
	case *Nonce:
		return fmt.Sprintf("NONCE %d bytes %x", len(p.Data), p.Data)
	case *Hash:
		return fmt.Sprintf("HASH %x", p.Data)
	case *Signature:
		return fmt.Sprintf("SIG %d bytes", len(p.Data))
	case *Cert:
		return fmt.Sprintf("CERT encoding=%d %d bytes", p.Encoding, len(p.Data))
	case *CertReq:
		return fmt.Sprintf("CR type=%d %d bytes", p.CertType, len(p.Data))
	case *ID:
		return "ID " + p.String()
	case *Notify:
		s := fmt.Sprintf("N(%s) doi=%d proto=%s spi=%s", p.NotifyType, p.DOI, ProtocolName(p.ProtocolID), hexOrDash(p.SPI))
		if len(p.Data) > 0 {
			s += " data=" + hex.EncodeToString(p.Data)
		}
		return s
	case *Delete:
		spis := make([]string, len(p.SPIs))
		for i, s := range p.SPIs {
			spis[i] = hex.EncodeToString(s)
		}
		return fmt.Sprintf("D doi=%d proto=%s spis=[%s]", p.DOI, ProtocolName(p.ProtocolID), strings.Join(spis, " "))
	case *VendorID:
		if n := VendorName(p.Data); n != "" {
			return fmt.Sprintf("VID %x (%s)", p.Data, n)
		}
		return fmt.Sprintf("VID %x", p.Data)
	case *NATD:
		return fmt.Sprintf("%s %x", p.Type(), p.Hash)
	case *NATOA:
		if a, ok := netip.AddrFromSlice(p.Addr); ok {
			return fmt.Sprintf("%s %s", p.Type(), a)
		}
		return fmt.Sprintf("%s %s %x", p.Type(), p.IDType, p.Addr)
	case *Unknown:
		return fmt.Sprintf("%s %d bytes", p.PType, len(p.Data))
	default:
		return fmt.Sprintf("%s %d bytes", p.Type(), len(p.Body()))
	}
}
