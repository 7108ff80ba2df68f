// Package policy is an IKE tunnel's configuration, the same for every IKE
// version: addresses and identities, the pre-shared key, what phase 1 (the
// IKE SA) and phase 2 (the IPsec SAs) offer and accept, lifetimes, rekeying,
// dead-peer detection and NAT traversal, with the names of the algorithms
// as status and logs print them. It imports no engine: configuration
// readers (gwconfig, export) and the engines depend on it.
package policy

import (
	"crypto"
	"fmt"
	"net/netip"
	"time"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/ike/impair"
)

// Secret is key material (a pre-shared key). It never prints: every fmt verb,
// JSON and logrus field shows "[redacted]".
type Secret []byte

func (s Secret) String() string                { return "[redacted]" }
func (s Secret) GoString() string              { return "[redacted]" }
func (s Secret) Format(f fmt.State, verb rune) { fmt.Fprint(f, "[redacted]") }
func (s Secret) MarshalText() ([]byte, error)  { return []byte("[redacted]"), nil }

// Selection says how a responder picks one of the initiator's proposals.
type Selection int

const (
	// SelectInitiatorOrder takes the first acceptable proposal in the
	// initiator's order (strongSwan's behaviour).
	SelectInitiatorOrder Selection = iota
	// SelectLowestValue takes, among the acceptable proposals, the one with
	// the lowest encryption, then integrity, then DH value, whatever the
	// initiator's order (AWS: "starting with the lowest configured value").
	SelectLowestValue
)

func (s Selection) String() string {
	if s == SelectLowestValue {
		return "lowest-value"
	}
	return "initiator-order"
}

// Phase1Proposal is one IKE SA transform set: AES-CBC with the key size, the
// hash (also the PRF, as HMAC) and the DH group, with PSK authentication.
// With GCM the cipher is AES-GCM with a 16-octet ICV and Hash is only the
// PRF (IKEv2 only: RFC 5282; AWS offers AES-GCM in phase 1 with IKEv2
// only). In IKEv2 the HMAC of Hash is both the PRF and the integrity
// algorithm (AUTH_HMAC_SHA1_96, AUTH_HMAC_SHA2_256_128...).
type Phase1Proposal struct {
	EncKeyBits int         // 128, 192 or 256 (AES)
	Hash       crypto.Hash // crypto.SHA1, SHA256, SHA384, SHA512
	DHGroup    uint16
	GCM        bool // AES-GCM-16 instead of AES-CBC (IKEv2 only)
}

// Version is an IKE major version.
type Version uint8

const (
	IKEv1 Version = 1 // RFC 2409
	IKEv2 Version = 2 // RFC 7296
)

func (v Version) String() string {
	switch v {
	case IKEv1:
		return "ikev1"
	case IKEv2:
		return "ikev2"
	}
	return fmt.Sprintf("ikev%d", uint8(v))
}

// Phase2Proposal is one IPsec SA proposal for quick mode.
type Phase2Proposal struct {
	Protocol   uint8  // isakmp.ProtoESP or isakmp.ProtoAH
	Encryption uint8  // ESP transform ID: isakmp.ESPAESCBC, ESPAESGCM16, ESPNull; 0 for AH
	EncKeyBits int    // 128/192/256 for AES; 0 for NULL
	Integrity  uint16 // isakmp.AuthHMACSHA1.. (0 with GCM)
	PFSGroup   uint16 // 0: no PFS
}

// ExchangeMode is the phase 1 exchange the initiator uses.
type ExchangeMode int

const (
	MainMode ExchangeMode = iota
	AggressiveMode
)

func (m ExchangeMode) String() string {
	if m == AggressiveMode {
		return "aggressive"
	}
	return "main"
}

// StartupAction is AWS's startup action: add (wait for the peer) or start.
type StartupAction int

const (
	StartupAdd StartupAction = iota
	StartupStart
)

func (a StartupAction) String() string {
	if a == StartupStart {
		return "start"
	}
	return "add"
}

// DPDAction is what happens when dead-peer detection declares the peer dead.
type DPDAction int

const (
	DPDClear DPDAction = iota
	DPDRestart
	DPDNone
)

func (a DPDAction) String() string {
	switch a {
	case DPDRestart:
		return "restart"
	case DPDNone:
		return "none"
	}
	return "clear"
}

// Phase1 is what a tunnel offers and accepts for the ISAKMP SA (IKEv1)
// or the IKE SA (IKEv2).
//
// Proposals may mix AES-CBC and AES-GCM (GCM) entries when the tunnel
// allows IKEv2 (gwconfig refuses GCM otherwise): AWS's default list for a
// tunnel with both versions has both kinds. The IKEv1 exchanges skip the
// GCM entries (neither offer nor accept them: RFC 5282 defines AES-GCM for
// the IKEv2 SA only); IKEv2 uses them all.
type Phase1 struct {
	Proposals []Phase1Proposal // offered in this order; the accepted set as responder
	Selection Selection
	Lifetime  time.Duration
	Exchange  ExchangeMode // used when initiating
	// AllowAggressive lets a responder accept aggressive mode (AWS: no).
	AllowAggressive bool
}

// Phase2 is what a tunnel offers and accepts for IPsec SAs.
type Phase2 struct {
	Proposals    []Phase2Proposal
	Selection    Selection
	Lifetime     time.Duration
	LifetimeKB   uint64 // 0: no volume limit
	Mode         childsa.Mode
	LocalTS      netip.Prefix
	RemoteTS     netip.Prefix
	ReplayWindow int
}

// Tunnel is one IKE peering: one IKE (ISAKMP) SA and its IPsec SAs.
type Tunnel struct {
	Name       string
	LocalAddr  netip.Addr // outside address we send from and expect packets to
	RemoteAddr netip.Addr // the peer's outside address
	// LocalID is our ID_IPV4_ADDR identity; defaults to LocalAddr. A gateway
	// behind NAT uses its public address (as AWS expects).
	LocalID netip.Addr
	// RemoteID is the identity we expect; defaults to RemoteAddr. An invalid
	// address means "accept any".
	RemoteID netip.Addr
	// LocalIdentity, when set, is our IKEv2 identity instead of LocalID:
	// an address, an FQDN or a KEY_ID. RemoteIdentity, when set, is the
	// only IKEv2 identity accepted from the peer (type and value), instead
	// of RemoteID. The IKEv1 engine ignores both (it keeps LocalID and
	// RemoteID, ID_IPV4_ADDR); gwconfig refuses an FQDN or KEY_ID on a
	// tunnel that allows IKEv1.
	LocalIdentity  Identity
	RemoteIdentity Identity
	PSK            Secret
	// RemotePorts are the peer's IKE and NAT-T ports (default 500/4500).
	RemotePorts Ports

	Phase1 Phase1
	Phase2 Phase2

	// IKEVersions are the IKE versions the tunnel speaks (AWS's
	// ike_versions): as responder it answers a first message of any of
	// them, as initiator it uses the first. Empty means IKEv1 only
	// (Versions).
	IKEVersions []Version

	StartupAction StartupAction
	RekeyMargin   time.Duration // rekey this long before expiry (AWS 270 s)
	RekeyFuzz     int           // percent of RekeyMargin added at random (AWS 100)

	// Dead-peer detection (RFC 3706): after DPDDelay without an inbound
	// packet from the peer we send R-U-THERE, again every DPDDelay while the
	// silence lasts; the peer is dead DPDTimeout after its last packet (AWS:
	// delay 10 s, timeout 40 s = dead 30 s after the first unanswered
	// probe). DPDDelay 0 means 10 s, or a third of DPDTimeout when that is
	// shorter. DPDTimeout 0: no probing. DPDAction DPDNone probes and
	// reports a dead peer, but keeps the SAs.
	DPDDelay   time.Duration
	DPDTimeout time.Duration
	DPDAction  DPDAction

	// NATKeepalive is the interval of NAT-keepalive packets (RFC 3948
	// section 2.3) sent while we are behind a NAT; 0 means the default,
	// 20 s. Negative: none.
	NATKeepalive time.Duration

	// NATT enables NAT traversal (vendor ID, NAT-D, float to 4500).
	NATT bool
	// ForceEncap fakes the NAT-D hashes so that the peer and we always use
	// UDP encapsulation (strongSwan's encap=yes).
	ForceEncap bool
}

// Versions returns the tunnel's IKE versions, IKEv1 only when none are set.
func (t *Tunnel) Versions() []Version {
	if len(t.IKEVersions) == 0 {
		return []Version{IKEv1}
	}
	return t.IKEVersions
}

// Allows reports whether the tunnel speaks IKE version v.
func (t *Tunnel) Allows(v Version) bool {
	for _, x := range t.Versions() {
		if x == v {
			return true
		}
	}
	return false
}

// InitiatorVersion is the version the tunnel initiates with: the first.
func (t *Tunnel) InitiatorVersion() Version { return t.Versions()[0] }

// Ports are the UDP ports of an endpoint: IKE (500) and NAT-T (4500).
type Ports struct {
	IKE  uint16
	NATT uint16
}

// DefaultPorts are the standard ports.
var DefaultPorts = Ports{IKE: 500, NATT: 4500}

// DefaultNATKeepalive is RFC 3948's suggested keepalive interval (section
// 4, "20 seconds"), also strongSwan's keep_alive default: the interval of a
// Tunnel whose NATKeepalive is 0.
const DefaultNATKeepalive = 20 * time.Second

// Config is an IKE engine's configuration: its tunnels and engine-wide
// settings.
type Config struct {
	Tunnels []Tunnel
	// Ports are the local UDP ports (default 500/4500). The engine binds
	// each distinct tunnel LocalAddr on both.
	Ports Ports
	// Retransmission: first timeout, backoff factor and tries (strongSwan:
	// 4 s, 1.8, 5). The exchange times out after the last try.
	RetransmitTimeout time.Duration
	RetransmitBase    float64
	RetransmitTries   int
	// MaxHalfOpen bounds responder state created by first messages.
	MaxHalfOpen int
	// Impairments make the engine misbehave on purpose, for tests
	// (package impair, applied by the engine); they are in force before
	// any tunnel starts.
	Impairments []impair.Spec
}
