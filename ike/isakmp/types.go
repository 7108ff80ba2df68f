// Package isakmp encodes and decodes ISAKMP messages (RFC 2408) with the IPsec
// DOI (RFC 2407) and the NAT traversal payloads of RFC 3947 and its drafts.
//
// The package knows nothing of keys or state: it turns bytes into typed
// payloads and back. Decoding is strict: every length and nesting level is
// checked, and an error names the payload and the byte offset where it failed
// (see *DecodeError). Encrypted bodies are left as raw bytes in Message.Body
// for the caller to decrypt and hand to DecodePayloads.
package isakmp

// HeaderLen is the fixed size of the ISAKMP header (RFC 2408 section 3.1).
const HeaderLen = 28

// Version is major 1, minor 0 in one octet.
const Version = 0x10

// ExchangeType is the ISAKMP exchange type (RFC 2408 section 3.1, RFC 2409).
type ExchangeType uint8

const (
	ExchangeBase               ExchangeType = 1
	ExchangeIdentityProtection ExchangeType = 2 // main mode
	ExchangeAuthOnly           ExchangeType = 3
	ExchangeAggressive         ExchangeType = 4
	ExchangeInformational      ExchangeType = 5
	ExchangeTransaction        ExchangeType = 6 // mode config (not implemented)
	ExchangeQuickMode          ExchangeType = 32
	ExchangeNewGroupMode       ExchangeType = 33
)

// Header flags (RFC 2408 section 3.1).
const (
	FlagEncryption = 0x01
	FlagCommit     = 0x02
	FlagAuthOnly   = 0x04
)

// PayloadType is the "Next Payload" value (RFC 2408 section 3.1, RFC 3947 section 3/5, draft types).
type PayloadType uint8

const (
	PayloadNone       PayloadType = 0
	PayloadSA         PayloadType = 1
	PayloadProposal   PayloadType = 2
	PayloadTransform  PayloadType = 3
	PayloadKE         PayloadType = 4
	PayloadID         PayloadType = 5
	PayloadCert       PayloadType = 6
	PayloadCertReq    PayloadType = 7
	PayloadHash       PayloadType = 8
	PayloadSig        PayloadType = 9
	PayloadNonce      PayloadType = 10
	PayloadNotify     PayloadType = 11
	PayloadDelete     PayloadType = 12
	PayloadVendorID   PayloadType = 13
	PayloadNATD       PayloadType = 20  // RFC 3947
	PayloadNATOA      PayloadType = 21  // RFC 3947
	PayloadNATDDraft  PayloadType = 130 // draft-ietf-ipsec-nat-t-ike-02/03
	PayloadNATOADraft PayloadType = 131
)

// DOI values (RFC 2407 section 4.2).
const DOIIPsec uint32 = 1

// Situation SIT_IDENTITY_ONLY (RFC 2407 section 4.2).
const SituationIdentityOnly uint32 = 1

// Protocol identifiers (RFC 2407 section 4.4.1).
const (
	ProtoISAKMP uint8 = 1
	ProtoAH     uint8 = 2
	ProtoESP    uint8 = 3
	ProtoIPComp uint8 = 4
)

// Transform identifiers.
const (
	TransformKeyIKE uint8 = 1 // RFC 2407 4.4.2, phase 1

	AHSHA      uint8 = 3 // RFC 2407 4.4.3
	AHSHA2_256 uint8 = 5 // RFC 4868 / IANA
	AHSHA2_384 uint8 = 6
	AHSHA2_512 uint8 = 7

	ESPNull     uint8 = 11 // RFC 2407 4.4.4, RFC 2410
	ESPAESCBC   uint8 = 12 // RFC 3602
	ESPAESGCM8  uint8 = 18 // RFC 4106
	ESPAESGCM12 uint8 = 19
	ESPAESGCM16 uint8 = 20
)

// Phase 1 attribute classes (RFC 2409 appendix A).
const (
	AttrEncryptionAlgorithm  uint16 = 1
	AttrHashAlgorithm        uint16 = 2
	AttrAuthenticationMethod uint16 = 3
	AttrGroupDescription     uint16 = 4
	AttrLifeType             uint16 = 11
	AttrLifeDuration         uint16 = 12
	AttrKeyLength            uint16 = 14
)

// Phase 1 attribute values (RFC 2409 appendix A, IANA "IPSEC Registry").
const (
	EncAESCBC     uint16 = 7
	HashSHA1      uint16 = 2
	HashSHA2256   uint16 = 4
	HashSHA2384   uint16 = 5
	HashSHA2512   uint16 = 6
	AuthPSK       uint16 = 1
	LifeSeconds   uint16 = 1
	LifeKilobytes uint16 = 2
)

// Phase 2 (IPsec DOI) attribute classes (RFC 2407 section 4.5).
const (
	AttrSALifeType        uint16 = 1
	AttrSALifeDuration    uint16 = 2
	AttrGroup             uint16 = 3
	AttrEncapsulationMode uint16 = 4
	AttrAuthAlgorithm     uint16 = 5
	AttrKeyLen            uint16 = 6
	AttrKeyRounds         uint16 = 7
	AttrCompDictSize      uint16 = 8
	AttrCompPrivAlg       uint16 = 9
)

// Encapsulation modes (RFC 2407 4.5, RFC 3947 section 5.1, draft values).
const (
	EncapTunnel            uint16 = 1
	EncapTransport         uint16 = 2
	EncapUDPTunnel         uint16 = 3
	EncapUDPTransport      uint16 = 4
	EncapUDPTunnelDraft    uint16 = 61443
	EncapUDPTransportDraft uint16 = 61444
)

// Phase 2 authentication algorithms (RFC 2407 4.5, RFC 4868).
const (
	AuthHMACMD5     uint16 = 1
	AuthHMACSHA1    uint16 = 2
	AuthHMACSHA2256 uint16 = 5
	AuthHMACSHA2384 uint16 = 6
	AuthHMACSHA2512 uint16 = 7
)

// ID types (RFC 2407 section 4.6.2.1).
type IDType uint8

const (
	IDIPv4Addr       IDType = 1
	IDFQDN           IDType = 2
	IDUserFQDN       IDType = 3
	IDIPv4AddrSubnet IDType = 4
	IDIPv6Addr       IDType = 5
	IDIPv6AddrSubnet IDType = 6
	IDIPv4AddrRange  IDType = 7
	IDIPv6AddrRange  IDType = 8
	IDDERASN1DN      IDType = 9
	IDDERASN1GN      IDType = 10
	IDKeyID          IDType = 11
)

// NotifyType is the notify message type (RFC 2408 section 3.14.1, RFC 2407
// section 4.6.3, RFC 3706).
type NotifyType uint16

const (
	NotifyInvalidPayloadType      NotifyType = 1
	NotifyDOINotSupported         NotifyType = 2
	NotifySituationNotSupported   NotifyType = 3
	NotifyInvalidCookie           NotifyType = 4
	NotifyInvalidMajorVersion     NotifyType = 5
	NotifyInvalidMinorVersion     NotifyType = 6
	NotifyInvalidExchangeType     NotifyType = 7
	NotifyInvalidFlags            NotifyType = 8
	NotifyInvalidMessageID        NotifyType = 9
	NotifyInvalidProtocolID       NotifyType = 10
	NotifyInvalidSPI              NotifyType = 11
	NotifyInvalidTransformID      NotifyType = 12
	NotifyAttributesNotSupported  NotifyType = 13
	NotifyNoProposalChosen        NotifyType = 14
	NotifyBadProposalSyntax       NotifyType = 15
	NotifyPayloadMalformed        NotifyType = 16
	NotifyInvalidKeyInformation   NotifyType = 17
	NotifyInvalidIDInformation    NotifyType = 18
	NotifyInvalidCertEncoding     NotifyType = 19
	NotifyInvalidCertificate      NotifyType = 20
	NotifyCertTypeUnsupported     NotifyType = 21
	NotifyInvalidCertAuthority    NotifyType = 22
	NotifyInvalidHashInformation  NotifyType = 23
	NotifyAuthenticationFailed    NotifyType = 24
	NotifyInvalidSignature        NotifyType = 25
	NotifyAddressNotification     NotifyType = 26
	NotifySALifetime              NotifyType = 27
	NotifyCertificateUnavailable  NotifyType = 28
	NotifyUnsupportedExchangeType NotifyType = 29
	NotifyUnequalPayloadLengths   NotifyType = 30

	NotifyConnected         NotifyType = 16384
	NotifyResponderLifetime NotifyType = 24576 // RFC 2407 4.6.3.1
	NotifyReplayStatus      NotifyType = 24577
	NotifyInitialContact    NotifyType = 24578
	NotifyRUThere           NotifyType = 36136 // RFC 3706
	NotifyRUThereAck        NotifyType = 36137
)

// Header is the fixed ISAKMP header.
type Header struct {
	ICookie     [8]byte
	RCookie     [8]byte
	NextPayload PayloadType
	Version     uint8 // 0x10 when encoding; decoding rejects major != 1
	Exchange    ExchangeType
	Flags       uint8
	MessageID   uint32
	Length      uint32 // filled by Encode; the decoded value as received
}

// Message is a decoded ISAKMP message. When Header.Flags has FlagEncryption,
// Decode leaves Payloads empty and puts the encrypted bytes after the header
// into Body.
type Message struct {
	Header   Header
	Payloads []Payload
	Body     []byte
}

// Payload is one ISAKMP payload. Body returns the payload's bytes after the
// 4-byte generic header (what RFC 2409 calls e.g. "SAi_b": "the entire body of
// the payload (minus the ISAKMP generic header)").
type Payload interface {
	Type() PayloadType
	Body() []byte
}

// Attribute is a data attribute (RFC 2408 section 3.3). Basic (TV) attributes
// carry a 16-bit Value; variable-length (TLV) attributes carry Data. The AF bit
// is not part of Type.
type Attribute struct {
	Type  uint16
	Basic bool
	Value uint16 // when Basic
	Data  []byte // when !Basic
}

// Transform is a transform payload nested in a proposal.
type Transform struct {
	Number     uint8
	ID         uint8
	Attributes []Attribute
}

// Proposal is a proposal payload nested in an SA payload. Proposals with equal
// Number form one logical AND-ed proposal (RFC 2408 4.2); this package keeps
// them as separate entries in wire order.
type Proposal struct {
	Number     uint8
	ProtocolID uint8
	SPI        []byte
	Transforms []Transform
}

// SA is the Security Association payload (RFC 2408 3.4, RFC 2407 4.6.1).
type SA struct {
	DOI       uint32
	Situation uint32
	Proposals []Proposal
	Raw       []byte // set by decoding: the body exactly as received
}

// KE is the Key Exchange payload.
type KE struct{ Data []byte }

// Nonce is the Nonce payload.
type Nonce struct{ Data []byte }

// Hash is the Hash payload.
type Hash struct{ Data []byte }

// Signature is the Signature payload (kept opaque).
type Signature struct{ Data []byte }

// Cert is the Certificate payload (kept opaque).
type Cert struct {
	Encoding uint8
	Data     []byte
}

// CertReq is the Certificate Request payload (kept opaque).
type CertReq struct {
	CertType uint8
	Data     []byte
}

// ID is the Identification payload with the IPsec DOI layout (RFC 2407 4.6.2).
type ID struct {
	IDType     IDType
	ProtocolID uint8
	Port       uint16
	Data       []byte
}

// Notify is the Notification payload (RFC 2408 3.14).
type Notify struct {
	DOI        uint32
	ProtocolID uint8
	SPI        []byte
	NotifyType NotifyType
	Data       []byte
}

// Delete is the Delete payload (RFC 2408 3.15).
type Delete struct {
	DOI        uint32
	ProtocolID uint8
	SPISize    uint8
	SPIs       [][]byte
}

// VendorID is the Vendor ID payload.
type VendorID struct{ Data []byte }

// NATD is the NAT-Discovery payload (RFC 3947 section 3.2). Draft selects the
// pre-RFC payload type 130 instead of 20.
type NATD struct {
	Hash  []byte
	Draft bool
}

// NATOA is the NAT Original Address payload (RFC 3947 section 5.2). Draft
// selects payload type 131 instead of 21.
type NATOA struct {
	IDType IDType // IDIPv4Addr or IDIPv6Addr
	Addr   []byte // 4 or 16 bytes
	Draft  bool
}

// Unknown is a payload of a type this package does not model; decoding keeps
// its body so that it can be logged and skipped.
type Unknown struct {
	PType PayloadType
	Data  []byte
}
