// Package pktgen is a bounded UDP packet generator and a counting receiver,
// for measuring how many small packets per second a path carries (issue 15:
// AWS caps a Site-to-Site VPN tunnel at about 140,000 packets/s).
//
// The Sender sends datagrams of a fixed payload size with sendmmsg (x/net
// ipv4/ipv6 PacketConn.WriteBatch), from one connected UDP socket per stream
// (distinct source ports), as fast as possible or at a fixed rate, and stops
// at whichever comes first of a packet count and a duration; both bounds are
// required and capped (MaxCount, MaxDuration). The send loop allocates
// nothing per packet. A failed sendmmsg (ENOBUFS, ECONNREFUSED from an ICMP
// error, ...) is counted and the same packets are offered again, so sequence
// numbers advance only for datagrams the kernel accepted: a gap the receiver
// sees was lost after the sender's socket.
//
// Every payload starts with a 16-byte header: the 64-bit sequence number of
// the datagram in its stream (big endian, from 0), the 32-bit stream number
// and the magic "VPKG". The rest is zero.
//
// The Receiver binds a UDP port, sets a large receive buffer (SO_RCVBUFFORCE
// when allowed, SO_RCVBUF otherwise), reads with recvmmsg (ReadBatch) and
// counts packets, payload bytes, and per stream the lost (gaps below the
// highest sequence number seen), reordered and duplicate datagrams (a
// 4096-entry window; older late arrivals are counted as "late"). Datagrams
// without the header are counted as foreign and otherwise ignored. It stops
// after an idle timeout that starts with the first packet, or after a hard
// duration, whichever comes first. The kernel's drop counter of the socket
// (datagrams dropped because the receive buffer was full) is read at the end
// from the socket's line in /proc/net/udp (or udp6), found by its inode: all
// drops of the run. SO_RXQ_OVFL is the fallback: the kernel attaches to each
// datagram the count as it was when that datagram was queued, so drops after
// the last datagram read are not in it.
//
// cmd/pktgen wraps both for scripts/bench-e2e.sh (subcommands send and recv,
// one JSON object on stdout).
package pktgen
