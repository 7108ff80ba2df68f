// Package status is what an IKE engine reports, the same for every IKE
// version: the status snapshot of its tunnels and SAs (the control API's
// /v1/status, AWS's tunnel telemetry), its counters and its events. It
// imports no engine: the control API, the gateway and the scenario runner
// read it without depending on an engine.
package status

import (
	"errors"
	"time"

	"github.com/vpnlab/vpnlab/childsa"
)

// ErrUnknownTunnel is returned (wrapped) by an engine's control calls that
// name a tunnel it does not have (the control API answers 404).
var ErrUnknownTunnel = errors.New("unknown tunnel")

// Event is one thing that happened, for logs, the control API's event stream
// and the scenario runner.
type Event struct {
	Time   time.Time         `json:"time"`
	Tunnel string            `json:"tunnel,omitempty"`
	Type   string            `json:"type"` // e.g. "phase1-up", "phase2-up", "phase1-down", "notify-received"
	Detail map[string]string `json:"detail,omitempty"`
}

// SA describes one IPsec SA pair.
type SA struct {
	Protocol    string    `json:"protocol"` // "esp" or "ah"
	Mode        string    `json:"mode"`
	UDPEncap    bool      `json:"udp_encap"`
	InboundSPI  string    `json:"inbound_spi"`  // 8 hex digits
	OutboundSPI string    `json:"outbound_spi"` // 8 hex digits
	Proposal    string    `json:"proposal"`     // e.g. "esp-aes128-sha256-modp2048"
	LocalTS     string    `json:"local_ts"`
	RemoteTS    string    `json:"remote_ts"`
	Established time.Time `json:"established"`
	Expires     time.Time `json:"expires"`
	RekeyAt     time.Time `json:"rekey_at"`
	// Counters come from the data path (absent with a data path that does
	// not count, e.g. ike.MemoryDataPath).
	Counters *childsa.Counters `json:"counters,omitempty"`
}

// Tunnel describes one tunnel as the control API reports it.
type Tunnel struct {
	Name        string `json:"name"`
	LocalAddr   string `json:"local_addr"`
	RemoteAddr  string `json:"remote_addr"`
	Phase1State string `json:"phase1_state"` // Established, Rekeying, Negotiating, Down (AWS wording)
	Phase2State string `json:"phase2_state"`
	// IKEVersion is the version of the current IKE SA ("ikev1", "ikev2");
	// empty while none exists. For IKEv2, ICookie and RCookie hold the
	// initiator's and responder's SPIs.
	IKEVersion      string    `json:"ike_version,omitempty"`
	Role            string    `json:"role,omitempty"` // initiator or responder of the current ISAKMP SA
	Exchange        string    `json:"exchange,omitempty"`
	Proposal        string    `json:"proposal,omitempty"` // e.g. "aes256-sha256-modp2048"
	ICookie         string    `json:"icookie,omitempty"`
	RCookie         string    `json:"rcookie,omitempty"`
	NATDetected     bool      `json:"nat_detected"`
	LocalBehindNAT  bool      `json:"local_behind_nat"`
	RemoteBehindNAT bool      `json:"remote_behind_nat"`
	Floated         bool      `json:"floated"` // IKE on port 4500
	Phase1Expires   time.Time `json:"phase1_expires,omitempty"`
	LastError       string    `json:"last_error,omitempty"`
	LastChange      time.Time `json:"last_change"`
	// AWS VgwTelemetry-style summary. Status is "UP" while an IPsec SA pair
	// is installed (a gateway that runs BGP narrows it to "UP while the BGP
	// session is established", as AWS's TunnelState does); StatusMessage
	// says why it is DOWN; LastStatusChange is when Status last changed.
	Status           string    `json:"status"`
	StatusMessage    string    `json:"status_message,omitempty"`
	LastStatusChange time.Time `json:"last_status_change"`
	// AcceptedRouteCount and BGPState are filled in by a gateway that runs
	// BGP (the engine leaves them empty).
	AcceptedRouteCount int    `json:"accepted_route_count"`
	BGPState           string `json:"bgp_state,omitempty"`
	// DPDState: "off", "alive", "probing" or "dead" (RFC 3706 monitor).
	DPDState string `json:"dpd_state"`
	// DataIn and DataOut are AWS's TunnelDataIn/TunnelDataOut: bytes after
	// decryption and before encryption, over every SA pair the tunnel had
	// (needs a data path that counts).
	DataIn  uint64 `json:"tunnel_data_in"`
	DataOut uint64 `json:"tunnel_data_out"`
	// PacketsIn, PacketsOut and Drops (by reason, as in childsa.Counters) are
	// the same sums for packets and data-path drops.
	PacketsIn  uint64            `json:"tunnel_packets_in"`
	PacketsOut uint64            `json:"tunnel_packets_out"`
	Drops      map[string]uint64 `json:"tunnel_drops,omitempty"`
	SAs        []SA              `json:"sas"`
	Counters   Counters          `json:"counters"`
}

// Counters are per-tunnel IKE counters.
type Counters struct {
	MessagesIn         uint64 `json:"messages_in"`
	MessagesOut        uint64 `json:"messages_out"`
	Retransmits        uint64 `json:"retransmits"`
	DuplicatesAnswered uint64 `json:"duplicates_answered"`
	Phase1Established  uint64 `json:"phase1_established"`
	Phase2Established  uint64 `json:"phase2_established"`
	// Phase2Superseded counts pairs deleted because the peer negotiated
	// another pair with other traffic selectors (one SA pair per tunnel,
	// onepair.go).
	Phase2Superseded uint64 `json:"phase2_superseded"`
	NotifiesSent     uint64 `json:"notifies_sent"`
	NotifiesReceived uint64 `json:"notifies_received"`
	// DPDProbes counts R-U-THERE sent, DPDTimeouts the peer declared dead
	// (RFC 3706).
	DPDProbes   uint64 `json:"dpd_probes"`
	DPDTimeouts uint64 `json:"dpd_timeouts"`
	// Phase1Rekeys and Phase2Rekeys count completed rekeys, either side
	// started: an ISAKMP SA established while another one was, an IPsec SA
	// pair installed that replaces an older one.
	Phase1Rekeys uint64 `json:"phase1_rekeys"`
	Phase2Rekeys uint64 `json:"phase2_rekeys"`
	// Phase1Collisions counts IKEv1 ISAKMP SAs that came up at once from
	// both sides' main modes; one of the two was deleted (on both sides the
	// same one). Not counted as rekeys.
	Phase1Collisions uint64 `json:"phase1_collisions"`
	// Exchanges counts messages and outcomes per exchange type.
	Exchanges ExchangeCounters `json:"exchanges"`
}

// ExchangeCounters are the per-exchange counters of a tunnel (ike's
// counters.go): IKEv1's exchanges (RFC 2409) and IKEv2's (RFC 7296 section
// 1). IKEv1's INFORMATIONAL (type 5) and IKEv2's (type 37) are counted
// apart.
type ExchangeCounters struct {
	Main          ExchangeCount `json:"main"`
	Aggressive    ExchangeCount `json:"aggressive"`
	Quick         ExchangeCount `json:"quick"`
	Informational ExchangeCount `json:"informational"`
	// IKEv2. Completed and Failed: IKE_SA_INIT completed when its
	// response was accepted (initiator) or sent (responder), failed when the
	// IKE SA failed before that; IKE_AUTH completed when the IKE SA was
	// established, failed when it failed after IKE_SA_INIT. CREATE_CHILD_SA
	// and INFORMATIONAL count messages only.
	IKESAInit       ExchangeCount `json:"ike_sa_init"`
	IKEAuth         ExchangeCount `json:"ike_auth"`
	CreateChildSA   ExchangeCount `json:"create_child_sa"`
	InformationalV2 ExchangeCount `json:"informational_v2"`
}

// ExchangeCount counts one exchange type's messages and results. Sent counts
// every datagram that left (first transmissions, retransmissions, cached
// answers to duplicates, impairment copies; not what an impairment
// dropped); Received every message of the tunnel's ISAKMP SAs that arrived,
// before decryption and checks. Completed and Failed count negotiations:
// phase 1 established or failed (main, aggressive), an IPsec SA pair
// installed or its quick mode failed (quick); IKEv2's are on
// ExchangeCounters.
type ExchangeCount struct {
	Sent        uint64 `json:"sent"`
	Received    uint64 `json:"received"`
	Retransmits uint64 `json:"retransmits"`
	Completed   uint64 `json:"completed"`
	Failed      uint64 `json:"failed"`
}

// EngineCounters are engine-wide counters (drops before a tunnel is known).
type EngineCounters struct {
	Received        uint64 `json:"received"`
	Malformed       uint64 `json:"malformed"`
	UnknownCookie   uint64 `json:"unknown_cookie"`
	UnknownPeer     uint64 `json:"unknown_peer"`
	HalfOpen        int    `json:"half_open"`
	HalfOpenRefused uint64 `json:"half_open_refused"` // by either bound
	// HalfOpenPeerRefused: refused by the per-peer-address bound (also in
	// HalfOpenRefused).
	HalfOpenPeerRefused uint64 `json:"half_open_peer_refused"`
	// HalfOpenLimit is the engine-wide bound in force (halfopen.go).
	HalfOpenLimit int `json:"half_open_limit"`
	// ZeroCookie: messages with a zero initiator cookie, dropped.
	ZeroCookie uint64 `json:"zero_cookie"`
	// CookieMismatch: messages with an existing SA's initiator cookie but
	// not its responder cookie (nor a retransmitted first message), dropped.
	CookieMismatch uint64 `json:"cookie_mismatch"`
	// UnauthenticatedNotifies: plaintext error notifies that did not end
	// anything at once (informational.go, unauthnotify.go).
	UnauthenticatedNotifies uint64 `json:"unauthenticated_notifies"`
	// Panics counts handler panics the loop recovered (recover.go): any
	// value above zero is a bug to report.
	Panics uint64 `json:"panics"`
	// Drops counts messages dropped on purpose without an answer, by
	// reason (docs/hostile-input.md): e.g. quick-mode-stale,
	// quick-mode-replay, internal-error.
	Drops map[string]uint64 `json:"drops,omitempty"`
}

// Snapshot is the whole engine's status at one moment.
type Snapshot struct {
	Tunnels  []Tunnel       `json:"tunnels"`
	Counters EngineCounters `json:"counters"`
	// DataPathDrops are data-path drops that belong to no SA (unknown SPI,
	// no route, malformed before the SPI), by reason.
	DataPathDrops map[string]uint64 `json:"data_path_drops,omitempty"`
}

// AddLive adds a live pair's data-path counters to a tunnel's sums
// (DataIn/DataOut, the packet and drop sums).
func (st *Tunnel) AddLive(c childsa.Counters) {
	st.DataIn += c.BytesIn
	st.DataOut += c.BytesOut
	st.PacketsIn += c.PacketsIn
	st.PacketsOut += c.PacketsOut
	for k, v := range c.Drops {
		if st.Drops == nil {
			st.Drops = map[string]uint64{}
		}
		st.Drops[k] += v
	}
}

// Page is one page of the status (GET /v1/status?offset=&limit=): the
// tunnels [Offset, Offset+limit) in configuration order, with the
// engine-wide counters. Total is the number of configured tunnels;
// NextOffset is where the next page starts (0 on the last page).
type Page struct {
	Snapshot
	Total      int `json:"total"`
	Offset     int `json:"offset"`
	NextOffset int `json:"next_offset,omitempty"`
}
