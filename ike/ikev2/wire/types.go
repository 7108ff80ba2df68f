// Package wire is the IKEv2 wire codec (RFC 7296 section 3): the header,
// every payload, strict decoding with errors that name the payload and the
// offset, the critical bit of section 2.5, the Encrypted payload (SK) with
// Seal/Open for AES-CBC + HMAC and AES-GCM-16 given the keys (RFC 5282), and
// RFC 7383 fragments (SKF): splitting and bounded reassembly. No state, no key
// derivation; no input makes it panic.
package wire

import "net/netip"

// HeaderLen is the length of the IKE header; GenericLen that of the generic
// payload header.
const (
	HeaderLen  = 28
	GenericLen = 4
)

// Version is the version octet of IKEv2: major 2, minor 0.
const Version = 0x20

// Header flags (RFC 7296 section 3.1).
const (
	FlagInitiator = 0x08 // I: sent by the original initiator of the IKE SA
	FlagVersion   = 0x10 // V: the sender can speak a higher major version
	FlagResponse  = 0x20 // R: this message is a response
)

// PayloadType is the Next Payload value (IANA "IKEv2 Payload Types").
type PayloadType uint8

const (
	PayloadNone     PayloadType = 0
	PayloadSA       PayloadType = 33
	PayloadKE       PayloadType = 34
	PayloadIDi      PayloadType = 35
	PayloadIDr      PayloadType = 36
	PayloadCert     PayloadType = 37
	PayloadCertReq  PayloadType = 38
	PayloadAuth     PayloadType = 39
	PayloadNonce    PayloadType = 40
	PayloadNotify   PayloadType = 41
	PayloadDelete   PayloadType = 42
	PayloadVendorID PayloadType = 43
	PayloadTSi      PayloadType = 44
	PayloadTSr      PayloadType = 45
	PayloadSK       PayloadType = 46
	PayloadCP       PayloadType = 47
	PayloadEAP      PayloadType = 48
	PayloadSKF      PayloadType = 53 // RFC 7383
)

// ExchangeType is the header's exchange type.
type ExchangeType uint8

const (
	ExchangeIKESAInit     ExchangeType = 34
	ExchangeIKEAuth       ExchangeType = 35
	ExchangeCreateChildSA ExchangeType = 36
	ExchangeInformational ExchangeType = 37
)

// Header is the IKE header (RFC 7296 section 3.1).
type Header struct {
	SPIi, SPIr  [8]byte
	NextPayload PayloadType
	Version     uint8 // major<<4 | minor; 0x20
	Exchange    ExchangeType
	Flags       uint8
	MessageID   uint32
	Length      uint32
}

// Initiator, Response and HigherVersion report the flags.
func (h Header) Initiator() bool     { return h.Flags&FlagInitiator != 0 }
func (h Header) Response() bool      { return h.Flags&FlagResponse != 0 }
func (h Header) HigherVersion() bool { return h.Flags&FlagVersion != 0 }

// Message is a decoded message: the header and its payload chain. In an
// encrypted message the last payload is an *Encrypted or an
// *EncryptedFragment (still sealed; see Open).
type Message struct {
	Header   Header
	Payloads []Payload
}

// Payload is one payload of a chain. The generic header (next payload,
// critical bit, length) is not part of it: encoders compute it, decoders
// check it. The critical bit of known payloads is written as 0 (RFC 7296
// section 2.5: a recipient that knows the type ignores it).
type Payload interface {
	Type() PayloadType
	appendBody(b []byte) ([]byte, error)
}

// SA is the Security Association payload (section 3.3).
type SA struct {
	Proposals []Proposal
}

// Proposal is one proposal substructure.
type Proposal struct {
	Number     uint8
	Protocol   ProtocolID
	SPI        []byte // empty in IKE_SA_INIT; 8 bytes when rekeying IKE, 4 for ESP/AH
	Transforms []Transform
}

// Transform is one transform substructure.
type Transform struct {
	Type       TransformType
	ID         uint16 // an EncrID, PRFID, IntegID, DHGroup or ESN as uint16
	Attributes []Attribute
}

// Attribute is a transform attribute (section 3.3.5). Format TV (AF set)
// carries Value; TLV carries Data. The only attribute RFC 7296 defines is
// the key length (14, TV).
type Attribute struct {
	Type  uint16 // without the AF bit
	TV    bool
	Value uint16
	Data  []byte
}

// KE is the Key Exchange payload (section 3.4).
type KE struct {
	Group DHGroup
	Data  []byte
}

// ID is the Identification payload, IDi or IDr (section 3.5).
type ID struct {
	Responder bool // IDr
	IDType    IDType
	Data      []byte
}

// Addr returns the address of an ID_IPV4_ADDR or ID_IPV6_ADDR.
func (p *ID) Addr() (netip.Addr, bool) {
	switch {
	case p.IDType == IDIPv4Addr && len(p.Data) == 4, p.IDType == IDIPv6Addr && len(p.Data) == 16:
		return netip.AddrFromSlice(p.Data)
	}
	return netip.Addr{}, false
}

// IDFromAddr returns an IDi (or IDr) of type ID_IPV4_ADDR/ID_IPV6_ADDR.
func IDFromAddr(a netip.Addr, responder bool) *ID {
	if a.Is4() {
		b := a.As4()
		return &ID{Responder: responder, IDType: IDIPv4Addr, Data: b[:]}
	}
	b := a.As16()
	return &ID{Responder: responder, IDType: IDIPv6Addr, Data: b[:]}
}

// Cert is the Certificate payload (section 3.6).
type Cert struct {
	Encoding CertEncoding
	Data     []byte
}

// CertReq is the Certificate Request payload (section 3.7): Data is the
// concatenation of 20-byte SHA-1 hashes of CA public keys for X.509.
type CertReq struct {
	Encoding CertEncoding
	Data     []byte
}

// Auth is the Authentication payload (section 3.8).
type Auth struct {
	Method AuthMethod
	Data   []byte
}

// Nonce is the Nonce payload (section 3.9): 16 to 256 bytes.
type Nonce struct {
	Data []byte
}

// Notify is the Notify payload (section 3.10).
type Notify struct {
	Protocol   ProtocolID // 0 unless the notify is about a Child SA
	SPI        []byte
	NotifyType NotifyType
	Data       []byte
}

// Delete is the Delete payload (section 3.11). For IKE, SPISize is 0 and
// SPIs is empty.
type Delete struct {
	Protocol ProtocolID
	SPISize  uint8
	SPIs     [][]byte
}

// VendorID is the Vendor ID payload (section 3.12).
type VendorID struct {
	Data []byte
}

// TS is a Traffic Selector payload, TSi or TSr (section 3.13).
type TS struct {
	Responder bool // TSr
	Selectors []Selector
}

// Selector is one traffic selector: an address range, an IP protocol (0 any)
// and a port range (0-65535 any).
type Selector struct {
	Type      TSType
	Protocol  uint8
	StartPort uint16
	EndPort   uint16
	Start     netip.Addr
	End       netip.Addr
}

// Encrypted is the Encrypted and Authenticated payload (SK, section 3.14)
// as on the wire: NextPayload is the type of the first inner payload, Data
// the IV, the ciphertext and the ICV.
type Encrypted struct {
	NextPayload PayloadType
	Data        []byte
}

// EncryptedFragment is the Encrypted Fragment payload (SKF, RFC 7383
// section 2.5). NextPayload is the first inner payload's type in fragment 1
// and 0 in the others.
type EncryptedFragment struct {
	NextPayload PayloadType
	Number      uint16
	Total       uint16
	Data        []byte // IV, ciphertext, ICV
}

// Config is the Configuration payload (section 3.15).
type Config struct {
	CfgType    CfgType
	Attributes []CfgAttribute
}

// CfgAttribute is one configuration attribute (section 3.15.1); the
// reserved bit is written as 0.
type CfgAttribute struct {
	Type  CfgAttrType
	Value []byte
}

// EAP is the EAP payload (section 3.16), carried opaquely: Data is the
// whole EAP message.
type EAP struct {
	Data []byte
}

// Unknown is a payload of a type this codec does not know, without the
// critical bit: skipped by the receiver (section 2.5) but kept in the chain,
// so a decoded message re-encodes to the same bytes.
type Unknown struct {
	PType PayloadType
	Data  []byte
}

// UnknownPayloads returns the payloads of unknown types that were skipped
// (section 2.5: no critical bit), for the engine to report.
func UnknownPayloads(ps []Payload) []*Unknown {
	var out []*Unknown
	for _, p := range ps {
		if u, ok := p.(*Unknown); ok && u != nil {
			out = append(out, u)
		}
	}
	return out
}
