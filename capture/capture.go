// Package capture writes a pcap file of what crosses a gateway's outside
// interface: the IKE / NAT-T datagrams the engine sends and receives (Writer
// implements status.PacketSink) and, from the ESP data path, raw ESP/AH IP
// packets (Writer.IP).
//
// The file has link type LINKTYPE_RAW (101): every record is a bare IPv4 or
// IPv6 packet, which Wireshark and tshark decode without further options
// (UDP 500 as ISAKMP, UDP 4500 as UDPENCAP, i.e. ISAKMP after the non-ESP
// marker or ESP-in-UDP). The engine hands over UDP payloads only, so Packet
// builds the IP and UDP headers (correct lengths and checksums; IPv4 with TTL
// 64, DF and an incrementing identification).
//
// Timestamps are the time of the call. Together with a key log (package
// keylog) a capture can be decrypted entirely, so the file is created with
// mode 0600, and this package logs nothing (errors never show payloads).
package capture

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/vpnlab/vpnlab/ike/status"
)

// LinkType is the pcap link type of the files this package writes.
const LinkType = layers.LinkTypeRaw

// Snaplen is the snapshot length in the file header; no packet is truncated
// (an IP packet is at most 65535 bytes without IPv6 jumbograms).
const Snaplen = 262144

// Writer writes packets to a pcap file. It is safe for concurrent use. Errors
// after Create (a failed write, a packet that cannot be built) are kept: the
// first one is returned by Err and Close. A packet that cannot be built is
// skipped; once a write to the file failed nothing more is written.
type Writer struct {
	mu     sync.Mutex
	f      *os.File
	bw     *bufio.Writer
	pw     *pcapgo.Writer
	path   string
	err    error
	ipID   uint16
	count  int
	broken bool // a write failed: the file may end in a partial record
	closed bool
	now    func() time.Time
}

var _ status.PacketSink = (*Writer)(nil)

// Create creates (or truncates) the pcap file at path with mode 0600 and
// writes the file header.
func Create(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	// O_CREATE's mode applies only to a new file: tighten an existing one.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("capture: %w", err)
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	w := &Writer{f: f, bw: bw, pw: pcapgo.NewWriter(bw), path: path, now: time.Now}
	if err := w.pw.WriteFileHeader(Snaplen, LinkType); err != nil {
		f.Close()
		return nil, fmt.Errorf("capture: write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return nil, fmt.Errorf("capture: write %s: %w", path, err)
	}
	return w, nil
}

// String names the file.
func (w *Writer) String() string { return "capture.Writer(" + w.path + ")" }

// Packet records one UDP datagram from src to dst carrying payload (the UDP
// payload exactly as on the wire, e.g. with the non-ESP marker on port 4500).
// Both addresses must be of the same IP version (IPv4-mapped IPv6 addresses
// count as IPv4). It implements status.PacketSink.
func (w *Writer) Packet(src, dst netip.AddrPort, payload []byte) {
	sa, da := src.Addr().Unmap(), dst.Addr().Unmap()
	udp := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
	var nl gopacket.SerializableLayer
	switch {
	case sa.Is4() && da.Is4():
		ip := &layers.IPv4{
			Version: 4, IHL: 5, TTL: 64, Flags: layers.IPv4DontFragment,
			Protocol: layers.IPProtocolUDP, SrcIP: sa.AsSlice(), DstIP: da.AsSlice(),
		}
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			w.fail(err)
			return
		}
		nl = ip
	case sa.Is6() && da.Is6():
		ip := &layers.IPv6{
			Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP,
			SrcIP: sa.WithZone("").AsSlice(), DstIP: da.WithZone("").AsSlice(),
		}
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			w.fail(err)
			return
		}
		nl = ip
	default:
		w.fail(fmt.Errorf("datagram %s -> %s: addresses are not both IPv4 or both IPv6", src, dst))
		return
	}
	maxPayload := 65535 - 8
	if sa.Is4() {
		maxPayload -= 20
	}
	if len(payload) > maxPayload {
		w.fail(fmt.Errorf("datagram %s -> %s: payload of %d bytes does not fit in one IP packet", src, dst, len(payload)))
		return
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}

	w.mu.Lock()
	defer w.mu.Unlock()
	if ip, ok := nl.(*layers.IPv4); ok {
		w.ipID++
		ip.Id = w.ipID
	}
	if err := gopacket.SerializeLayers(buf, opts, nl, udp, gopacket.Payload(payload)); err != nil {
		w.failLocked(fmt.Errorf("datagram %s -> %s: %w", src, dst, err))
		return
	}
	w.writeLocked(buf.Bytes())
}

// IP records one complete IPv4 or IPv6 packet as is (e.g. an ESP or AH
// packet from the data path). A packet that does not start with IP version 4
// or 6 is not written and is an error.
func (w *Writer) IP(packet []byte) {
	if len(packet) == 0 || (packet[0]>>4 != 4 && packet[0]>>4 != 6) {
		w.fail(errors.New("IP packet: not an IPv4 or IPv6 packet"))
		return
	}
	if len(packet) > Snaplen {
		w.fail(fmt.Errorf("IP packet: %d bytes is longer than the snapshot length", len(packet)))
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writeLocked(packet)
}

// Count returns how many packets were written.
func (w *Writer) Count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.count
}

// Err returns the first error after Create, if any.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Close flushes and closes the file and returns the first error since Create,
// if any. Packets recorded after Close are ignored.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.err
	}
	w.closed = true
	var ferr, serr error
	if !w.broken {
		ferr = w.bw.Flush()
		serr = w.f.Sync()
	}
	cerr := w.f.Close()
	return errors.Join(w.err, wrap(w.path, ferr), wrap(w.path, serr), wrap(w.path, cerr))
}

func wrap(path string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("capture: %s: %w", path, err)
}

func (w *Writer) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.failLocked(err)
}

func (w *Writer) failLocked(err error) {
	if w.err == nil && !w.closed {
		w.err = fmt.Errorf("capture: %s: %w", w.path, err)
	}
}

// writeLocked writes one record and flushes it, so the file is readable
// while the gateway runs. w.mu must be held.
func (w *Writer) writeLocked(data []byte) {
	if w.closed || w.broken {
		return
	}
	ci := gopacket.CaptureInfo{Timestamp: w.now(), CaptureLength: len(data), Length: len(data)}
	if err := w.pw.WritePacket(ci, data); err != nil {
		w.broken = true
		w.failLocked(err)
		return
	}
	if err := w.bw.Flush(); err != nil {
		w.broken = true
		w.failLocked(err)
		return
	}
	w.count++
}
