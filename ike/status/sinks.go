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

// PacketSink receives every UDP datagram an engine sends or receives on its
// IKE and NAT-T sockets, exactly as on the wire (with the non-ESP marker on
// NAT-T), for pcap capture (package capture implements it). It is called
// from several goroutines.
type PacketSink interface {
	Packet(src, dst netip.AddrPort, payload []byte)
}
