// Package datapath carries the traffic of the IPsec SAs that the IKE engine
// negotiates: it is the engine's childsa.DataPath.
//
// # Pipeline
//
// Outbound: the inside Device (a TUN device, or tuntest's channel device in
// tests) is read in batches (GSO super-packets arrive already split); each
// packet is looked up by destination in the route table (longest prefix
// over the explicit routes of SetRoutes, decided outside: BGP or static,
// and, unless Config.ExplicitRoutesOnly, the routes derived from the
// sending pairs' remote traffic selectors; an explicit route wins on an
// identical prefix). A route names tunnels: the first one with an outbound
// SA pair carries the packet, or with ECMP a hash of the flow picks among
// those that have one. The packet is checked against that pair's selectors
// (source in local TS, destination in remote TS), protected
// (esp.AppendESP or esp.ProtectAH, tunnel or transport mode) and written to
// the Wire: ESP in UDP on the IKE engine's NAT-T socket, or raw IPv4
// (protocol 50/51), to the tunnel's current peer address.
//
// Inbound: the Wire's readers (raw sockets for protocol 50/51, the engine's
// NAT-T sockets through ServeNATT) hand each packet to Receive*, which
// looks the SA up by protocol and SPI, verifies it (ICV, then anti-replay,
// then padding: esp.OpenESP / esp.VerifyAH), decapsulates it, checks the
// inner packet against the selectors and writes it to the Device. For ESP
// in UDP, an authenticated packet from a new address:port moves the
// tunnel's peer there (NAT rebinding, see OnPeerMoved); transport-mode
// TCP/UDP checksums are fixed for the NAT (package natt, RFC 3948 section
// 3.1.2); the outer TOS byte is read for ECN (RFC 6040).
//
// # Ownership
//
// The SA database is an immutable snapshot behind an atomic pointer: the
// packet path reads it without locks; Install and Delete (called from the
// IKE engine's loop) and SetRoutes (any goroutine) copy it, change the copy
// and publish it. A tunnel's peer address is an atomic pointer of its own,
// shared by the tunnel's pairs, replaced only when the peer moves. Each esp.SA
// has a mutex because inbound packets of one SA can arrive on two sockets;
// it is uncontended in practice. Per-goroutine buffers are reused: the
// packet path allocates nothing per packet. The encryption and ICV of a
// batch of tunnel-mode ESP packets can run on several cores, with the
// sequence numbers and the replay window kept in packet order (workers.go).
//
// # Lifetimes
//
// Time lifetimes are the IKE engine's (it rekeys and deletes on timers).
// Byte lifetimes and the sequence number space are counted here: the soft
// limit (90 % of the byte lifetime, or sequence number 2^32-2^20) asks the
// engine to rekey, the hard limit stops the SA and asks the engine to
// delete it (see OnLimit).
package datapath

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/vpnlab/vpnlab/childsa"
)

// PacketSink receives copies of what crosses the outside (for pcap). src and
// dst carry ports for UDP; for raw IP, pkt is the whole IPv4 packet and the
// ports are zero. Called from several goroutines.
type PacketSink interface {
	Packet(src, dst netip.AddrPort, payload []byte)
	IP(pkt []byte)
}

// Config configures a DataPath.
type Config struct {
	// Device is the inside: where cleartext packets are read and written.
	Device tun.Device
	// Wire is the outside. Raw IP and ESP-in-UDP sending go through it.
	Wire Wire
	Log  logrus.FieldLogger
	// Sink, if set, receives every outside packet (capture).
	Sink PacketSink
	// SoftBytesPercent is the share of the byte lifetime after which a
	// rekey is requested (default 90).
	SoftBytesPercent int
	// ExplicitRoutesOnly: route by SetRoutes' routes alone; the routes
	// derived from the remote traffic selectors are not used. (The
	// selectors are still checked.)
	ExplicitRoutesOnly bool
}

// DataPath is the ESP/AH data path. Create it with New, give it to the IKE
// engine with ike.WithDataPath, and run it with Run.
type DataPath struct {
	dev  tun.Device
	wire Wire
	log  logrus.FieldLogger
	sink PacketSink
	soft int

	table   atomic.Pointer[table]
	mu      sync.Mutex // serialises writers of table; guards spis, slots, peers
	spis    map[uint64]bool
	slots   map[string]int32       // tunnel -> index in table.senders (routes.go)
	peers   map[string]*peerState  // tunnel -> current peer address (peer.go)
	tunOpts map[string]*tunnelOpts // tunnel -> MSS clamp, outside MTU (mtu.go)
	seed    uint64                 // ECMP flow hash seed

	moveMu      sync.Mutex // guards the OnPeerMoved handler and its queue
	moveFn      func(tunnel string, from, to netip.AddrPort)
	moveQ       []peerMove
	moveRunning bool

	limitMu sync.Mutex
	limitFn func(childsa.Limit)

	workers sync.Pool     // *worker for Receive* called by wires
	batches chan *inBatch // free *inBatch for ReceiveIPs (a sync.Pool loses its 4 MiB at every GC)
	ipID    atomic.Uint32

	drops  globalDrops
	rl     rateLimiter
	crypto *cryptoPool // helpers of the parallel crypto (workers.go)

	closed atomic.Bool
}

// New returns a data path over cfg.Device and cfg.Wire.
func New(cfg Config) (*DataPath, error) {
	if cfg.Device == nil {
		return nil, errors.New("datapath: no inside device")
	}
	if cfg.Wire == nil {
		return nil, errors.New("datapath: no wire")
	}
	d := &DataPath{dev: cfg.Device, wire: cfg.Wire, log: cfg.Log, sink: cfg.Sink, soft: cfg.SoftBytesPercent,
		spis: map[uint64]bool{}, slots: map[string]int32{}, peers: map[string]*peerState{}, tunOpts: map[string]*tunnelOpts{}, seed: rand.Uint64(),
		crypto: newCryptoPool(), batches: make(chan *inBatch, 4)}
	if d.log == nil {
		l := logrus.New()
		l.SetLevel(logrus.WarnLevel)
		d.log = l
	}
	if d.soft <= 0 || d.soft > 100 {
		d.soft = 90
	}
	d.table.Store(emptyTable(cfg.ExplicitRoutesOnly))
	cfg.Wire.Attach(d)
	return d, nil
}

func spiKey(proto uint8, spi uint32) uint64 { return uint64(proto)<<32 | uint64(spi) }

// AllocateSPI returns a random unused inbound SPI >= 256.
func (d *DataPath) AllocateSPI(proto uint8) (uint32, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	spi, err := childsa.RandomSPI(func(spi uint32) bool { return d.spis[spiKey(proto, spi)] })
	if err != nil {
		return 0, fmt.Errorf("datapath: %w", err)
	}
	d.spis[spiKey(proto, spi)] = true
	return spi, nil
}

// Install adds an SA pair; the tunnel's outbound traffic moves to it at
// once, older pairs keep verifying inbound packets until deleted
// (make-before-break). The pair's Remote becomes the tunnel's peer address
// (for all its pairs): the engine's view is the newest.
func (d *DataPath) Install(p childsa.Pair) error { return d.install(p, true) }

// InstallInbound adds an SA pair whose inbound SA verifies packets at
// once while the tunnel keeps sending on its older pair until
// ActivateOutbound (childsa.StagedDataPath: a phase 2 rekey without loss).
func (d *DataPath) InstallInbound(p childsa.Pair) error { return d.install(p, false) }

func (d *DataPath) install(p childsa.Pair, send bool) error {
	pr, err := newPair(p, d.soft)
	if err != nil {
		return fmt.Errorf("datapath: install %s: %w", p.Tunnel, err)
	}
	if !p.UDPEncap && !d.wire.RawIP() {
		return fmt.Errorf("datapath: install %s: %s without UDP encapsulation needs raw IP sockets, which are not available (%s)", p.Tunnel, protoName(p.Inbound.Protocol), d.wire.RawIPError())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	pr.peer = d.peerLocked(p.Tunnel, p.Remote)
	pr.opts = d.optsLocked(p.Tunnel)
	if from, moved := pr.peer.set(p.Remote); moved {
		d.log.WithFields(logrus.Fields{"tunnel": p.Tunnel, "from": from.String(), "to": p.Remote.String()}).Info("data path: peer address set by the installed pair")
	}
	t := d.table.Load().clone()
	msg := "data path: SA pair installed"
	if send {
		t.add(pr)
	} else {
		t.addInbound(pr)
		msg = "data path: SA pair installed inbound only (outbound follows on activation)"
	}
	d.publishLocked(t)
	d.spis[spiKey(p.Inbound.Protocol, p.Inbound.SPI)] = true
	d.log.WithFields(logrus.Fields{"tunnel": p.Tunnel, "spi_in": fmt.Sprintf("%08x", p.Inbound.SPI),
		"spi_out": fmt.Sprintf("%08x", p.Outbound.SPI), "proto": protoName(p.Inbound.Protocol), "mode": p.Mode.String(),
		"udp_encap": p.UDPEncap, "local_ts": p.LocalTS.String(), "remote_ts": p.RemoteTS.String()}).Info(msg)
	return nil
}

// ActivateOutbound moves the tunnel's outbound traffic to the pair with
// this inbound SPI, installed before (childsa.StagedDataPath).
func (d *DataPath) ActivateOutbound(proto uint8, spi uint32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	cur := d.table.Load()
	p := cur.inbound[spiKey(proto, spi)]
	if p == nil {
		return fmt.Errorf("datapath: activate: no SA pair with inbound SPI %08x", spi)
	}
	t := cur.clone()
	t.activate(p)
	d.publishLocked(t)
	d.log.WithFields(logrus.Fields{"tunnel": p.tunnel, "spi_in": fmt.Sprintf("%08x", spi),
		"spi_out": fmt.Sprintf("%08x", p.out.SPI())}).Info("data path: outbound traffic moved to the SA pair")
	return nil
}

// Delete removes the pair with this inbound SPI.
func (d *DataPath) Delete(proto uint8, spi uint32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.table.Load().clone()
	p := t.remove(spiKey(proto, spi))
	d.publishLocked(t)
	delete(d.spis, spiKey(proto, spi))
	if p == nil {
		return nil
	}
	c := p.counters()
	d.log.WithFields(logrus.Fields{"tunnel": p.tunnel, "spi_in": fmt.Sprintf("%08x", spi),
		"packets_in": c.PacketsIn, "bytes_in": c.BytesIn, "packets_out": c.PacketsOut, "bytes_out": c.BytesOut}).Info("data path: SA pair removed")
	return nil
}

// LastInbound reports when the pair last accepted an inbound packet.
func (d *DataPath) LastInbound(proto uint8, spi uint32) time.Time {
	p := d.table.Load().inbound[spiKey(proto, spi)]
	if p == nil {
		return time.Time{}
	}
	return p.lastInbound()
}

// SACounters returns the counters of the pair with this inbound SPI.
func (d *DataPath) SACounters(proto uint8, spi uint32) (childsa.Counters, bool) {
	p := d.table.Load().inbound[spiKey(proto, spi)]
	if p == nil {
		return childsa.Counters{}, false
	}
	return p.counters(), true
}

// Drops returns the drops that belong to no SA, by reason.
func (d *DataPath) Drops() map[string]uint64 { return d.drops.snapshot() }

// OnLimit sets the handler of lifetime events (the IKE engine's).
func (d *DataPath) OnLimit(fn func(childsa.Limit)) {
	d.limitMu.Lock()
	d.limitFn = fn
	d.limitMu.Unlock()
}

func (d *DataPath) signal(l childsa.Limit) {
	d.limitMu.Lock()
	fn := d.limitFn
	d.limitMu.Unlock()
	if fn != nil {
		fn(l)
	}
}

func protoName(p uint8) string {
	switch p {
	case protoESP:
		return "esp"
	case protoAH:
		return "ah"
	}
	return fmt.Sprintf("proto-%d", p)
}

var (
	_ childsa.DataPath         = (*DataPath)(nil)
	_ childsa.DataPathCounters = (*DataPath)(nil)
	_ childsa.LimitSource      = (*DataPath)(nil)
	_ childsa.NATTDataPath     = (*DataPath)(nil)
	_ childsa.PeerMover        = (*DataPath)(nil)
	_ childsa.StagedDataPath   = (*DataPath)(nil)
)

// Close stops the data path: RunInside returns, the device is closed.
// The wire is the caller's to close.
func (d *DataPath) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	d.crypto.stop()
	return d.dev.Close()
}
