package traffic

import (
	"encoding/binary"

	"github.com/vpnlab/vpnlab/natt"
)

// Probe header, at the start of every probe payload (big endian):
//
//	0  magic   uint32
//	4  flow id uint32
//	8  seq     uint64
//	16 sent    int64, nanoseconds since the flow's first send
const (
	probeMagic = 0x564c5446 // "VLTF"
	headerLen  = 24
)

func putHeader(b []byte, flow uint32, seq uint64, ts int64) {
	_ = b[headerLen-1]
	binary.BigEndian.PutUint32(b[0:], probeMagic)
	binary.BigEndian.PutUint32(b[4:], flow)
	binary.BigEndian.PutUint64(b[8:], seq)
	binary.BigEndian.PutUint64(b[16:], uint64(ts))
}

// parseHeader returns the fields of a probe header of flow (ok false if b is
// not one).
func parseHeader(b []byte, flow uint32) (seq uint64, ts int64, ok bool) {
	if len(b) < headerLen || binary.BigEndian.Uint32(b[0:]) != probeMagic || binary.BigEndian.Uint32(b[4:]) != flow {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(b[8:]), int64(binary.BigEndian.Uint64(b[16:])), true
}

// checksum is the Internet checksum (RFC 1071) of b: natt's ones'
// complement sum, complemented.
func checksum(b []byte) uint16 { return ^natt.Sum(b) }
