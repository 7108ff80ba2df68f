package wire

import "fmt"

// The IANA registries of "Internet Key Exchange Version 2 (IKEv2)
// Parameters" used here; String() gives the registry name (or the number).

// ProtocolID is a Security Protocol Identifier (section 3.3.1).
type ProtocolID uint8

const (
	ProtoIKE ProtocolID = 1
	ProtoAH  ProtocolID = 2
	ProtoESP ProtocolID = 3
)

// TransformType (section 3.3.2).
type TransformType uint8

const (
	TransformENCR  TransformType = 1
	TransformPRF   TransformType = 2
	TransformINTEG TransformType = 3
	TransformDH    TransformType = 4 // "Key Exchange Method" since RFC 9370
	TransformESN   TransformType = 5
)

// EncrID is a Transform Type 1 ID.
type EncrID uint16

const (
	EncrAESCBC   EncrID = 12
	EncrAESGCM8  EncrID = 18
	EncrAESGCM12 EncrID = 19
	EncrAESGCM16 EncrID = 20
)

// PRFID is a Transform Type 2 ID.
type PRFID uint16

const (
	PRFHMACSHA1    PRFID = 2
	PRFHMACSHA2256 PRFID = 5
	PRFHMACSHA2384 PRFID = 6
	PRFHMACSHA2512 PRFID = 7
)

// IntegID is a Transform Type 3 ID.
type IntegID uint16

const (
	IntegNone           IntegID = 0
	IntegHMACSHA196     IntegID = 2
	IntegHMACSHA2256128 IntegID = 12
	IntegHMACSHA2384192 IntegID = 13
	IntegHMACSHA2512256 IntegID = 14
)

// DHGroup is a Transform Type 4 ID (also the group of a KE payload and of
// INVALID_KE_PAYLOAD).
type DHGroup uint16

const (
	DHNone         DHGroup = 0
	DHModp1024     DHGroup = 2
	DHModp1536     DHGroup = 5
	DHModp2048     DHGroup = 14
	DHModp3072     DHGroup = 15
	DHModp4096     DHGroup = 16
	DHModp6144     DHGroup = 17
	DHModp8192     DHGroup = 18
	DHECP256       DHGroup = 19
	DHECP384       DHGroup = 20
	DHECP521       DHGroup = 21
	DHModp1024S160 DHGroup = 22 // RFC 5114
	DHModp2048S224 DHGroup = 23 // RFC 5114
	DHModp2048S256 DHGroup = 24 // RFC 5114
)

// ESN is a Transform Type 5 ID.
type ESN uint16

const (
	ESNNo  ESN = 0
	ESNYes ESN = 1
)

// AttrKeyLength is the Key Length transform attribute (TV), in bits.
const AttrKeyLength = 14

// IDType (section 3.5).
type IDType uint8

const (
	IDIPv4Addr   IDType = 1
	IDFQDN       IDType = 2
	IDRFC822Addr IDType = 3
	IDIPv6Addr   IDType = 5
	IDDERASN1DN  IDType = 9
	IDDERASN1GN  IDType = 10
	IDKeyID      IDType = 11
)

// CertEncoding (section 3.6).
type CertEncoding uint8

const (
	CertPKCS7       CertEncoding = 1
	CertX509Sig     CertEncoding = 4
	CertCRL         CertEncoding = 7
	CertRawRSAKey   CertEncoding = 11
	CertHashURLX509 CertEncoding = 12
)

// AuthMethod (section 3.8; 14 from RFC 7427).
type AuthMethod uint8

const (
	AuthRSASig     AuthMethod = 1
	AuthPSK        AuthMethod = 2
	AuthDSSSig     AuthMethod = 3
	AuthECDSA256   AuthMethod = 9
	AuthECDSA384   AuthMethod = 10
	AuthECDSA521   AuthMethod = 11
	AuthDigitalSig AuthMethod = 14
)

// TSType (section 3.13.1).
type TSType uint8

const (
	TSIPv4Range TSType = 7
	TSIPv6Range TSType = 8
)

// CfgType (section 3.15).
type CfgType uint8

const (
	CfgRequest CfgType = 1
	CfgReply   CfgType = 2
	CfgSet     CfgType = 3
	CfgAck     CfgType = 4
)

// CfgAttrType (section 3.15.1).
type CfgAttrType uint16

const (
	CfgInternalIP4Address  CfgAttrType = 1
	CfgInternalIP4Netmask  CfgAttrType = 2
	CfgInternalIP4DNS      CfgAttrType = 3
	CfgInternalIP4NBNS     CfgAttrType = 4
	CfgInternalIP4DHCP     CfgAttrType = 6
	CfgApplicationVersion  CfgAttrType = 7
	CfgInternalIP6Address  CfgAttrType = 8
	CfgInternalIP6DNS      CfgAttrType = 10
	CfgInternalIP6DHCP     CfgAttrType = 12
	CfgInternalIP4Subnet   CfgAttrType = 13
	CfgSupportedAttributes CfgAttrType = 14
	CfgInternalIP6Subnet   CfgAttrType = 15
)

func named[T ~uint8 | ~uint16](m map[T]string, v T) string {
	if s, ok := m[v]; ok {
		return s
	}
	return fmt.Sprintf("%d", v)
}

var payloadNames = map[PayloadType]string{
	PayloadNone: "NONE", PayloadSA: "SA", PayloadKE: "KE", PayloadIDi: "IDi", PayloadIDr: "IDr",
	PayloadCert: "CERT", PayloadCertReq: "CERTREQ", PayloadAuth: "AUTH", PayloadNonce: "Ni/Nr",
	PayloadNotify: "N", PayloadDelete: "D", PayloadVendorID: "V", PayloadTSi: "TSi", PayloadTSr: "TSr",
	PayloadSK: "SK", PayloadCP: "CP", PayloadEAP: "EAP", PayloadSKF: "SKF",
}

func (t PayloadType) String() string { return named(payloadNames, t) }

// known reports whether t is a payload type this codec decodes.
func (t PayloadType) known() bool { _, ok := payloadNames[t]; return ok && t != PayloadNone }

var exchangeNames = map[ExchangeType]string{
	ExchangeIKESAInit: "IKE_SA_INIT", ExchangeIKEAuth: "IKE_AUTH",
	ExchangeCreateChildSA: "CREATE_CHILD_SA", ExchangeInformational: "INFORMATIONAL",
}

func (t ExchangeType) String() string { return named(exchangeNames, t) }

var protoNames = map[ProtocolID]string{ProtoIKE: "IKE", ProtoAH: "AH", ProtoESP: "ESP"}

func (p ProtocolID) String() string { return named(protoNames, p) }

var transformTypeNames = map[TransformType]string{
	TransformENCR: "ENCR", TransformPRF: "PRF", TransformINTEG: "INTEG", TransformDH: "DH", TransformESN: "ESN",
}

func (t TransformType) String() string { return named(transformTypeNames, t) }

var encrNames = map[EncrID]string{
	EncrAESCBC: "ENCR_AES_CBC", EncrAESGCM8: "ENCR_AES_GCM_8", EncrAESGCM12: "ENCR_AES_GCM_12", EncrAESGCM16: "ENCR_AES_GCM_16",
}

func (e EncrID) String() string { return named(encrNames, e) }

var prfNames = map[PRFID]string{
	PRFHMACSHA1: "PRF_HMAC_SHA1", PRFHMACSHA2256: "PRF_HMAC_SHA2_256", PRFHMACSHA2384: "PRF_HMAC_SHA2_384", PRFHMACSHA2512: "PRF_HMAC_SHA2_512",
}

func (p PRFID) String() string { return named(prfNames, p) }

var integNames = map[IntegID]string{
	IntegNone: "NONE", IntegHMACSHA196: "AUTH_HMAC_SHA1_96", IntegHMACSHA2256128: "AUTH_HMAC_SHA2_256_128",
	IntegHMACSHA2384192: "AUTH_HMAC_SHA2_384_192", IntegHMACSHA2512256: "AUTH_HMAC_SHA2_512_256",
}

func (i IntegID) String() string { return named(integNames, i) }

var dhNames = map[DHGroup]string{
	DHNone: "NONE", DHModp1024: "MODP_1024", DHModp1536: "MODP_1536", DHModp2048: "MODP_2048", DHModp3072: "MODP_3072",
	DHModp4096: "MODP_4096", DHModp6144: "MODP_6144", DHModp8192: "MODP_8192", DHECP256: "ECP_256", DHECP384: "ECP_384",
	DHECP521: "ECP_521", DHModp1024S160: "MODP_1024_160", DHModp2048S224: "MODP_2048_224", DHModp2048S256: "MODP_2048_256",
}

func (g DHGroup) String() string { return named(dhNames, g) }

var esnNames = map[ESN]string{ESNNo: "NO_ESN", ESNYes: "ESN"}

func (e ESN) String() string { return named(esnNames, e) }

var idNames = map[IDType]string{
	IDIPv4Addr: "ID_IPV4_ADDR", IDFQDN: "ID_FQDN", IDRFC822Addr: "ID_RFC822_ADDR", IDIPv6Addr: "ID_IPV6_ADDR",
	IDDERASN1DN: "ID_DER_ASN1_DN", IDDERASN1GN: "ID_DER_ASN1_GN", IDKeyID: "ID_KEY_ID",
}

func (t IDType) String() string { return named(idNames, t) }

var certNames = map[CertEncoding]string{
	CertPKCS7: "PKCS #7 wrapped X.509 certificate", CertX509Sig: "X.509 Certificate - Signature", CertCRL: "Certificate Revocation List (CRL)",
	CertRawRSAKey: "Raw RSA Key", CertHashURLX509: "Hash and URL of X.509 certificate",
}

func (c CertEncoding) String() string { return named(certNames, c) }

var authNames = map[AuthMethod]string{
	AuthRSASig: "RSA Digital Signature", AuthPSK: "Shared Key Message Integrity Code", AuthDSSSig: "DSS Digital Signature",
	AuthECDSA256: "ECDSA with SHA-256 on the P-256 curve", AuthECDSA384: "ECDSA with SHA-384 on the P-384 curve",
	AuthECDSA521: "ECDSA with SHA-512 on the P-521 curve", AuthDigitalSig: "Digital Signature",
}

func (m AuthMethod) String() string { return named(authNames, m) }

var tsNames = map[TSType]string{TSIPv4Range: "TS_IPV4_ADDR_RANGE", TSIPv6Range: "TS_IPV6_ADDR_RANGE"}

func (t TSType) String() string { return named(tsNames, t) }

var cfgNames = map[CfgType]string{CfgRequest: "CFG_REQUEST", CfgReply: "CFG_REPLY", CfgSet: "CFG_SET", CfgAck: "CFG_ACK"}

func (t CfgType) String() string { return named(cfgNames, t) }

var cfgAttrNames = map[CfgAttrType]string{
	CfgInternalIP4Address: "INTERNAL_IP4_ADDRESS", CfgInternalIP4Netmask: "INTERNAL_IP4_NETMASK", CfgInternalIP4DNS: "INTERNAL_IP4_DNS",
	CfgInternalIP4NBNS: "INTERNAL_IP4_NBNS", CfgInternalIP4DHCP: "INTERNAL_IP4_DHCP", CfgApplicationVersion: "APPLICATION_VERSION",
	CfgInternalIP6Address: "INTERNAL_IP6_ADDRESS", CfgInternalIP6DNS: "INTERNAL_IP6_DNS", CfgInternalIP6DHCP: "INTERNAL_IP6_DHCP",
	CfgInternalIP4Subnet: "INTERNAL_IP4_SUBNET", CfgSupportedAttributes: "SUPPORTED_ATTRIBUTES", CfgInternalIP6Subnet: "INTERNAL_IP6_SUBNET",
}

func (t CfgAttrType) String() string { return named(cfgAttrNames, t) }

// TransformName names a transform's ID within its type, e.g. ENCR_AES_CBC.
func TransformName(t TransformType, id uint16) string {
	switch t {
	case TransformENCR:
		return EncrID(id).String()
	case TransformPRF:
		return PRFID(id).String()
	case TransformINTEG:
		return IntegID(id).String()
	case TransformDH:
		return DHGroup(id).String()
	case TransformESN:
		return ESN(id).String()
	}
	return fmt.Sprintf("%d", id)
}
