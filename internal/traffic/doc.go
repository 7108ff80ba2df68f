// Package traffic runs measured traffic flows between hosts that live in
// network namespaces, from inside the calling Go process (no ping or iperf
// processes).
//
// A flow (Start) sends numbered probes from a source host to a destination
// host at a fixed rate and accounts for what arrives:
//
//   - icmp: ICMP echo requests from a socket created in SrcNS (a raw ICMP
//     socket, or a kernel "ping" socket where raw sockets are not permitted);
//     the destination's kernel answers, the replies are the received probes.
//     DstNS is not used.
//   - udp: datagrams from a socket in SrcNS to a receiver socket bound to
//     Dst:Port in DstNS.
//   - tcp: messages of Size bytes written over a connection from SrcNS to a
//     listener on Dst:Port in DstNS. The client retries connecting until it
//     works or the flow ends; a broken connection is replaced by a new one
//     (Result.Reconnects) and the message stream continues with the next
//     sequence number.
//
// Every probe (icmp echo data, udp datagram, tcp message) starts with a
// 24-byte header: a magic number, the flow's id, the 64-bit sequence number
// and the send time. Probes of other flows, and probes whose sequence number
// or send time do not match what this flow sent, are ignored.
//
// # Schedule
//
// Probe k is due at Start + k/Rate. A sender that falls behind its schedule
// by more than max(one interval, 50 ms) (e.g. a tcp write blocked by a full
// send buffer) does not send the missed probes in a burst: the schedule
// restarts from the current time, so a stall shows up as a gap in send time
// (see MaxGap), not as a burst. Sending stops after Count probes, when the
// next probe would be due at or after Start + Duration, at the probe limit
// (MaxProbes), on Stop, or when the context given to Start is done.
//
// # Metrics
//
// The definitions below are those of Result; they apply to the final Result
// returned by Flow.Stop (after its grace period for late replies). A Snapshot
// taken while the flow runs counts probes still in flight as lost.
//
//   - Sent: probes the flow tried to send, one per scheduled send. A probe
//     whose send failed locally (the send call returned an error such as
//     ENETUNREACH while a route is missing, or, for tcp, no connection was
//     established at that moment) still counts as sent; it is counted in
//     Errors and, never arriving, in Lost.
//   - Received: distinct probes received (distinct sequence numbers).
//     Sent = Received + Lost.
//   - Lost: Sent minus the number of distinct sequence numbers received.
//     LossPct = 100 × Lost / Sent (0 when nothing was sent). For tcp these
//     are messages written (or due) but never received, e.g. data lost with
//     a broken connection.
//   - Reordered: received probes (first copies only) whose sequence number
//     is lower than the highest sequence number received before them. A
//     single late probe counts once, however many overtook it.
//   - Duplicates: extra copies: every reception of a sequence number that was
//     already received counts one (as ping's "+N duplicates").
//   - Bytes: payload bytes of all accepted probes, duplicates included
//     (Size per probe for udp and tcp, the echo data for icmp).
//   - MaxGap, the longest outage: the longest stretch of send time without a
//     successful probe. Take the send times of all received probes together
//     with Start and End, in send order; MaxGap is the largest difference
//     between two neighbours and MaxGapFrom, MaxGapTo are its ends. Between
//     two received probes a < b with everything in between lost, the gap is
//     sendtime(b) − sendtime(a) = (lost in between + 1) × interval: an upper
//     bound of the outage, which lasted at least sendtime(b−1) −
//     sendtime(a+1), two intervals less. With no loss MaxGap is one interval
//     (plus sender jitter). Lost probes at the beginning give
//     the gap Start → first success, lost probes at the end the gap last
//     success → End, and when nothing arrived MaxGap = End − Start. Because
//     it is measured in send time, a sender stall (no probes sent) is a gap
//     too.
//   - AvgDelay, MaxDelay, MinDelay: for the first copy of each received probe, the
//     time from its send to its reception: one-way for udp and tcp (both
//     ends run in this process), the round trip for icmp.
//   - Series: per bucket of BucketWidth (Spec.Bucket, doubled as often as
//     needed to keep at most 65,536 buckets), by send time: Sent counts the
//     probes sent in the bucket, Received how many of those were received.
//   - Errors: probes whose send failed locally (see Sent); not fatal.
//     LastError is the most recent send or tcp connect error, or the note
//     that the probe limit was reached.
//   - Reconnects (tcp): connections established after the first one.
//
// # Memory bound
//
// A flow keeps per-probe state (send time and a received bit, about 8.1
// bytes per probe, allocated in chunks of 4,096 probes as they are sent) for
// at most MaxProbes = 1,000,000 probes, i.e. at most about 8.2 MB; plus at
// most 65,536 time-series buckets (1 MB). Start refuses a Count, or a
// Rate × Duration, above MaxProbes; a flow without either stops sending when
// it reaches MaxProbes. The send and receive loops reuse their buffers and do
// not allocate per probe.
package traffic
