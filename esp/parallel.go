package esp

import (
	"runtime"
	"sync"
)

// Parallel crypto. The per-packet work of ESP splits into a serial part that
// must follow the order of the packets of one SA (outbound: the sequence
// number; inbound: the anti-replay window) and the expensive part in the
// middle (encryption and ICV), which needs only the keys. The serial parts
// are PrepareESP and AcceptESP; the middle runs on lanes: each lane is a
// crypto state of its own (HMAC state, CBC mode, scratch space) under its own
// mutex, so that several goroutines can seal or decrypt packets of the same
// SA at once. A data path that runs the middle on worker goroutines keeps
// per-SA order by preparing (outbound) or accepting (inbound) on one
// goroutine in packet order, and by sending in the order of preparation.
//
// Lanes are made on first use (an idle SA does not pay for them); their
// number is GOMAXPROCS at that moment, at most maxLanes. Lane numbers beyond
// that wrap around (lane i uses state i mod n), which is correct, only
// slower (the two share the mutex).

const maxLanes = 16

// lane is one goroutine's crypto state for an SA.
type lane struct {
	mu sync.Mutex
	cryptoState
}

// lane returns the crypto state for lane i, making the lanes on first use.
func (sa *SA) lane(i int) *lane {
	ls := sa.lanes.Load()
	if ls == nil {
		ls = sa.makeLanes()
	}
	return (*ls)[uint(i)%uint(len(*ls))]
}

func (sa *SA) makeLanes() *[]*lane {
	n := min(max(runtime.GOMAXPROCS(0), 1), maxLanes)
	ls := make([]*lane, n)
	for i := range ls {
		l := &lane{}
		if sa.newMAC != nil {
			l.mac = sa.newMAC()
		}
		if sa.enc == encCBC {
			l.cbcEnc, l.cbcDec, _ = newCBCModes(sa.block) // worked in New
		}
		ls[i] = l
	}
	if !sa.lanes.CompareAndSwap(nil, &ls) {
		return sa.lanes.Load() // another goroutine was first: use its lanes
	}
	return &ls
}

// PendingESP is an outbound ESP packet laid out by PrepareESP whose IV,
// encryption and ICV are still to be done (Seal). The zero value is no
// packet (Seal does nothing).
type PendingESP struct {
	sa  *SA
	pkt []byte // SPI through ICV, in the caller's buffer
	seq uint32
}

// Seal completes the packet with the crypto state of lane (see the package's
// parallel crypto notes). Seals of different packets may run at the same time
// on any goroutines; each packet must be sealed once, before it is sent.
func (p *PendingESP) Seal(lane int) {
	if p.sa == nil {
		return
	}
	l := p.sa.lane(lane)
	l.mu.Lock()
	p.sa.seal(&l.cryptoState, p.pkt, p.seq)
	l.mu.Unlock()
}

// Len returns the length of the ESP packet.
func (p *PendingESP) Len() int { return len(p.pkt) }

// DecryptESP is the first half of OpenESP on the crypto state of lane: the
// checks (length, alignment, SPI), the ICV (GCM: tag) and decryption of
// packet into dst's spare capacity. It returns dst extended by the padded
// plaintext (payload, padding, pad length, next header) and the packet's
// sequence number; a failure (counted in the SA's Stats) returns dst
// unchanged. It neither reads nor moves the anti-replay window: the caller
// must pass every packet it decrypted to AcceptESP (serialised per SA)
// before using its payload. Calls may run at the same time on any
// goroutines, also for the same SA.
func (sa *SA) DecryptESP(lane int, dst, packet []byte) ([]byte, uint32, error) {
	l := sa.lane(lane)
	l.mu.Lock()
	out, seq, err := sa.decrypt(&l.cryptoState, dst, packet)
	l.mu.Unlock()
	return out, seq, err
}

// SealBatch seals jobs (of any SAs) on lane, like Seal for each.
func SealBatch(lane int, jobs []PendingESP) {
	for i := range jobs {
		jobs[i].Seal(lane)
	}
}

// AEAD reports whether the SA uses AES-GCM, whose encryption and ICV are
// one pass of AES-NI/VAES and PCLMUL code: about ten times cheaper per byte
// than AES-CBC with HMAC, so cheap that handing a batch to another core
// costs more than it saves (a data path's parallel crypto skips it).
func (sa *SA) AEAD() bool { return sa.enc == encGCM }
