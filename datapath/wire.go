package datapath

import (
	"net"
	"net/netip"
)

// Receiver is what a Wire delivers outside packets to: the DataPath.
type Receiver interface {
	// ReceiveIP takes a whole IPv4 packet carrying ESP (50) or AH (51).
	ReceiveIP(pkt []byte)
	// ReceiveIPs takes up to MaxBatch such packets at once.
	ReceiveIPs(pkts [][]byte)
	// ReceiveUDP takes the payload of an ESP-in-UDP datagram (the ESP
	// packet, starting with the SPI) that arrived on local from from.
	ReceiveUDP(local, from netip.AddrPort, esp []byte)
}

// Wire is the outside network as the data path sees it. NetWire is the real
// one (raw IP sockets and the IKE engine's NAT-T sockets); MemoryWire
// connects two data paths in one process for tests. Implementations must be
// safe for concurrent use; the packet slices are only valid during a call.
type Wire interface {
	// Attach sets where received packets go; called once by New.
	Attach(r Receiver)
	// AddNATT registers a NAT-T socket bound to local for sending ESP in
	// UDP from that address (the IKE engine's socket, see ServeNATT).
	AddNATT(local netip.AddrPort, conn *net.UDPConn)
	// SendUDP sends one ESP packet in UDP from local to remote.
	SendUDP(local, remote netip.AddrPort, esp []byte) error
	// SendUDPSegments sends the ESP packets in buf, each seg bytes long
	// except possibly the last, as separate datagrams from local to remote
	// (with UDP segmentation offload where available).
	SendUDPSegments(local, remote netip.AddrPort, buf []byte, seg int) error
	// SendIP sends one complete IPv4 packet (header included).
	SendIP(pkt []byte) error
	// RawIP reports whether SendIP works; RawIPError says why it does not.
	RawIP() bool
	RawIPError() string
}
