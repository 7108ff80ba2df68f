// Package wanem emulates a WAN between two links of a router namespace:
// per tunnel path (matched by outer addresses) and per direction, delay
// with jitter, loss (independent or Gilbert-Elliott bursts), reordering,
// duplication, corruption, a rate limit (bit/s and packets/s) and an MTU
// (ICMP fragmentation-needed or a silent drop). This kernel has no netem;
// the forwarder does in user space what netem would do.
//
// # Pipeline
//
//	link A (veth) ──AF_PACKET rx──> reader A ─┐                ┌─> sendmmsg on link B
//	                 (recvmmsg,               │ per packet:    │   (passthrough: same
//	                  virtio header)          │ match (src,dst)│    batch, no queue)
//	the kernel's own copy: nftables           │ TTL-1          │
//	(table inet wanem, forward, prio -20)     │ loss/GE        ├─> delay queue (min-heap,
//	drops it, so only we forward it           │ MTU: ICMP/drop │   fixed slot pool, bound
//	                                          │ corrupt        │   = QueueLimit) ──>
//	link B ──AF_PACKET rx──> reader B ────────┤ duplicate      │   scheduler goroutine:
//	                                          │ packets/s      │   one timer, sends what is
//	  unmatched traffic: ignored, the kernel  │ delay+jitter   │   due in sendmmsg batches
//	  forwards it as usual                    └ reorder (hold) ┘   bit rate: the out link's
//	                                                               htb class + tbf (kernel)
//
// Each link has one AF_PACKET socket (ETH_P_ALL, PACKET_VNET_HDR) read with
// recvmmsg in batches of 64 through Go's poller (a closed socket ends the
// reader). Frames of an impaired path are taken over: the reader applies the
// direction's impairments and either sends the frame at once from its receive
// buffer (a direction with no delay, jitter, rate or reordering) or copies it
// into a slot of the pool and queues it with its departure time. Everything
// else on the link (ARP, other paths, the router's own traffic) is left to
// the kernel; ARP replies and IPv4 sources teach the forwarder the
// neighbours' MAC addresses (it asks by ARP for a next hop it does not know).
//
// Packets keep their virtio header: a checksum the sender left to offload
// stays offloaded, and a TCP GSO super-packet goes out as one (the kernel
// segments it; impairments then act on the whole super-packet, and its MTU
// check uses the segment size). A UDP GSO super-packet (the gateways' ESP in
// UDP with UDP_SEGMENT) is split into its datagrams first, so impairments act
// per datagram as on a real link.
//
// Corruption flips one bit after the ESP SPI and sequence number or after the
// ISAKMP header (and fixes a complete UDP checksum), so the receiver sees an
// ICV or HASH failure, not an IP or UDP error. It happens before duplication:
// both copies carry it. A packet larger than the MTU is dropped; with mode
// "icmp" and DF set the sender gets ICMP type 3 code 4 with the next-hop MTU
// from the router's address on the ingress link. Packets without DF are not
// fragmented by the emulated link: they are dropped too (counted).
//
// Reordering holds a chosen packet back until ReorderGap later packets of
// its direction have been queued (at most 1 s); with jitter larger than
// the packet spacing, packets also reorder by themselves (as with netem).
// The bit rate is the kernel's: on the link a direction leaves by, an htb
// root classifies the direction's packets (u32 on outer source and
// destination) into a class whose tbf shapes them to RateBits with a queue
// of RateQueue's worth of bytes; the forwarder's frames pass the qdisc like
// the kernel's own, and a frame the full queue refuses (ENOBUFS from
// sendmmsg) is counted as dropped_rate. Packets per second have no qdisc
// in this kernel (no netem, and tbf and htb count bytes), so RatePackets is
// a pacer in the forwarder (the line is busy 1/pps per packet; a packet
// that would wait longer than RateQueue is dropped), placed before the
// delay in the same queue.
//
// # Ownership and cost
//
// The configuration is an immutable snapshot behind an atomic pointer, so Set
// is safe while packets flow; each direction's state (random generator,
// Gilbert-Elliott state, shaper clock) belongs to the reader of its ingress
// link; held packets and the heap are the scheduler's, under its mutex.
// Counters are atomic. Buffers are allocated once (the pipeline allocates
// nothing per packet; see TestPipelineAllocs). Stop gives the paths back to
// the kernel, closes the sockets (ending the readers), stops the scheduler
// and drops what is queued.
//
// The forwarder replaces the kernel's forwarding for the impaired paths, so
// the router's NAT (conntrack) does not see them: it cannot be combined with
// a NAT on the same router.
package wanem
