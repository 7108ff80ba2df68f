package ike

// KeyLogger receives key material for Wireshark export (opt-in). The engine
// calls it once per established ISAKMP SA and once per installed SA pair.
type KeyLogger interface {
	// IKEv1Keys logs the ISAKMP SA's initiator cookie and encryption key
	// (Wireshark's ikev1_decryption_table).
	IKEv1Keys(icookie [8]byte, encKey []byte)
	// ChildKeys logs both SAs of a pair (Wireshark's esp_sa table).
	ChildKeys(pair ChildSAPair)
}

// Ports are the UDP ports of an endpoint: IKE (500) and NAT-T (4500).
type Ports struct {
	IKE  uint16
	NATT uint16
}

// DefaultPorts are the standard ports.
var DefaultPorts = Ports{IKE: 500, NATT: 4500}
