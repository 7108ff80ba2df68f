package status

import (
	"net/netip"

	"github.com/vpnlab/vpnlab/childsa"
)

// KeyLogger receives key material for Wireshark export (opt-in). An engine
// calls it once per established IKE SA and once per installed SA pair;
// package keylog implements it.
type KeyLogger interface {
	// IKEv1Keys logs the ISAKMP SA's initiator cookie and encryption key
	// (Wireshark's ikev1_decryption_table).
	IKEv1Keys(icookie [8]byte, encKey []byte)
	// ChildKeys logs both SAs of a pair (Wireshark's esp_sa table).
	ChildKeys(pair childsa.Pair)
}

// IKEv2KeyLogger is a KeyLogger that also takes IKEv2 SA keys (Wireshark's
// ikev2_decryption_table); an engine that finds a KeyLogger implementing it
// calls IKEv2Keys once per established or rekeyed IKEv2 SA.
type IKEv2KeyLogger interface {
	KeyLogger
	IKEv2Keys(k IKEv2Keys)
}

// IKEv2Keys are one IKEv2 SA's SPIs and keys with the negotiated transform
// IDs (RFC 7296 section 3.3.2 numbers): what Wireshark needs to decrypt
// the SK payloads. It is secret material: only a key log gets it.
type IKEv2Keys struct {
	SPIi, SPIr  [8]byte
	EncrID      uint16 // ENCR_AES_CBC (12), ENCR_AES_GCM_16 (20)
	EncrKeyBits int    // 128, 192, 256
	IntegID     uint16 // AUTH_HMAC_SHA1_96 (2), ... ; 0 with an AEAD cipher
	SKei, SKer  []byte // for AES-GCM: key followed by the 4-octet salt
	SKai, SKar  []byte // empty with an AEAD cipher
}

// PacketSink receives every UDP datagram an engine sends or receives on its
// IKE and NAT-T sockets, exactly as on the wire (with the non-ESP marker on
// NAT-T), for pcap capture (package capture implements it). It is called
// from several goroutines.
type PacketSink interface {
	Packet(src, dst netip.AddrPort, payload []byte)
}
