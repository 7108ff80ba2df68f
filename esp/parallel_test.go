package esp

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/vpnlab/vpnlab/childsa"
	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// parallelAlgs are the transforms whose lanes differ: CBC+HMAC (CBC mode and
// HMAC state per lane), GCM (stateless AEAD, scratch per lane), NULL+HMAC.
var parallelAlgs = []alg{
	{"aes128cbc-sha256", isakmp.ESPAESCBC, 16, isakmp.AuthHMACSHA2256},
	{"aesgcm128", isakmp.ESPAESGCM16, 20, 0},
	{"null-sha1", isakmp.ESPNull, 0, isakmp.AuthHMACSHA1},
}

// sealParallel prepares n packets in order (payload i carries i) and seals
// them on 4 goroutines in a random order, each on a random lane.
func sealParallel(t *testing.T, out *SA, n int, rng *rand.Rand) [][]byte {
	t.Helper()
	pkts := make([][]byte, n)
	jobs := make([]PendingESP, n)
	for i := range n {
		inner := ipv4Packet(100+i%300, 17, 0)
		binary.BigEndian.PutUint32(inner[IPv4HeaderLen:], uint32(i))
		var err error
		if pkts[i], jobs[i], err = out.PrepareESP(make([]byte, 0, 2048), inner, ProtoIPv4); err != nil {
			t.Fatal(err)
		}
		if jobs[i].Len() != len(pkts[i]) {
			t.Fatalf("PendingESP.Len %d, packet %d", jobs[i].Len(), len(pkts[i]))
		}
	}
	order := rng.Perm(n)
	lanes := make([]int, n)
	for i := range lanes {
		lanes[i] = rng.IntN(8)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := g; k < n; k += 4 {
				jobs[order[k]].Seal(lanes[k])
			}
		}()
	}
	wg.Wait()
	return pkts
}

// TestParallelSealKeepsOrder: packets prepared in order and sealed on several
// goroutines and lanes in any order carry sequence numbers 1..n in
// preparation order, and each opens (serially, with OpenESP) to its own
// payload: the lanes' crypto states are equivalent to the SA's own.
func TestParallelSealKeepsOrder(t *testing.T) {
	for _, a := range parallelAlgs {
		t.Run(a.name, func(t *testing.T) {
			out, in := pair(t, childSA(a, isakmp.ProtoESP, 0x7000), childsa.ModeTunnel, 0)
			rng := rand.New(rand.NewPCG(1, 2))
			const n = 500
			pkts := sealParallel(t, out, n, rng)
			for i, p := range pkts {
				if seq := binary.BigEndian.Uint32(p[4:8]); seq != uint32(i+1) {
					t.Fatalf("packet %d carries sequence number %d", i, seq)
				}
				inner, nh, err := in.OpenESP(nil, p)
				if err != nil || nh != ProtoIPv4 {
					t.Fatalf("packet %d: %v (next header %d)", i, err, nh)
				}
				if got := binary.BigEndian.Uint32(inner[IPv4HeaderLen:]); got != uint32(i) {
					t.Fatalf("packet %d opened to payload %d", i, got)
				}
			}
			if s := out.Stats(); s.Packets != n {
				t.Errorf("outbound counted %d packets, want %d", s.Packets, n)
			}
		})
	}
}

// TestParallelDecryptReplayOutOfOrder: packets decrypted at once on several
// lanes and accepted in a completion order that differs from the sequence
// order are each accepted exactly once; a second AcceptESP of any of them
// (a replay racing its original) is a replay drop; packets left of the
// window are dropped even when they arrive last; a forged packet fails in
// DecryptESP and never reaches the window.
func TestParallelDecryptReplayOutOfOrder(t *testing.T) {
	for _, a := range parallelAlgs {
		t.Run(a.name, func(t *testing.T) {
			out, in := pair(t, childSA(a, isakmp.ProtoESP, 0x7001), childsa.ModeTunnel, 64)
			rng := rand.New(rand.NewPCG(3, 4))
			const n = 300
			pkts := sealParallel(t, out, n, rng)
			type result struct {
				i   int
				pt  []byte
				seq uint32
			}
			// Decrypt in blocks of 48 (less than the window of 64) on 4
			// goroutines; accept each block in the order the decryptions
			// finished, serialised as AcceptESP requires.
			var accepted int
			for lo := 0; lo < n; lo += 48 {
				hi := min(lo+48, n)
				done := make(chan result, hi-lo)
				var wg sync.WaitGroup
				for g := range 4 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := lo + g; i < hi; i += 4 {
							pt, seq, err := in.DecryptESP(g, make([]byte, 0, 2048), pkts[i])
							if err != nil {
								t.Errorf("decrypt %d: %v", i, err)
								return
							}
							done <- result{i, pt, seq}
						}
					}()
				}
				wg.Wait()
				close(done)
				var rs []result
				for r := range done {
					rs = append(rs, r)
				}
				rng.Shuffle(len(rs), func(x, y int) { rs[x], rs[y] = rs[y], rs[x] })
				for _, r := range rs {
					m, nh, err := in.AcceptESP(r.seq, r.pt)
					if err != nil || nh != ProtoIPv4 {
						t.Fatalf("accept %d (seq %d): %v", r.i, r.seq, err)
					}
					if got := binary.BigEndian.Uint32(r.pt[IPv4HeaderLen:]); got != uint32(r.i) || m != 100+r.i%300+IPv4HeaderLen {
						t.Fatalf("packet %d: payload %d, length %d", r.i, got, m)
					}
					accepted++
					if _, _, err := in.AcceptESP(r.seq, r.pt); err != DropReplay {
						t.Fatalf("second accept of seq %d: %v, want replay", r.seq, err)
					}
				}
			}
			if accepted != n {
				t.Fatalf("accepted %d of %d", accepted, n)
			}
			// Left of the window (top is n, window 64): decrypts, but is a replay.
			pt, seq, err := in.DecryptESP(1, nil, pkts[10])
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := in.AcceptESP(seq, pt); err != DropReplay {
				t.Fatalf("old packet: %v, want replay", err)
			}
			// A forged packet: ICV drop in DecryptESP, window untouched.
			forged := bytes.Clone(pkts[n-1])
			binary.BigEndian.PutUint32(forged[4:8], n+1000)
			if _, _, err := in.DecryptESP(2, nil, forged); err != DropICV {
				t.Fatalf("forged packet: %v, want icv", err)
			}
			s := in.Stats()
			if s.Packets != n || s.Drops[DropReplay] != n+1 || s.Drops[DropICV] != 1 {
				t.Errorf("stats: %d packets, %d replay, %d icv drops", s.Packets, s.Drops[DropReplay], s.Drops[DropICV])
			}
		})
	}
}

// TestParallelZeroAllocs: once an SA's lanes exist, PrepareESP + Seal and
// DecryptESP + AcceptESP allocate nothing.
func TestParallelZeroAllocs(t *testing.T) {
	for _, a := range parallelAlgs {
		out, in := pair(t, childSA(a, isakmp.ProtoESP, 0x7002), childsa.ModeTunnel, 0)
		inner := ipv4Packet(1000, 17, 0)
		buf := make([]byte, 0, 2048)
		dec := make([]byte, 0, 2048)
		lane := 0
		step := func() {
			p, job, err := out.PrepareESP(buf, inner, ProtoIPv4)
			if err != nil {
				t.Fatal(err)
			}
			job.Seal(lane)
			pt, seq, err := in.DecryptESP(lane+1, dec, p)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := in.AcceptESP(seq, pt); err != nil {
				t.Fatal(err)
			}
			lane++
		}
		step() // makes the lanes
		if n := testing.AllocsPerRun(200, step); n != 0 {
			t.Errorf("%s: %v allocs per packet", a.name, n)
		}
		var jobs [4]PendingESP
		bufs := [4][]byte{make([]byte, 0, 2048), make([]byte, 0, 2048), make([]byte, 0, 2048), make([]byte, 0, 2048)}
		batch := func() {
			for i := range jobs {
				var err error
				if _, jobs[i], err = out.PrepareESP(bufs[i], inner, ProtoIPv4); err != nil {
					t.Fatal(err)
				}
			}
			SealBatch(1, jobs[:])
		}
		if n := testing.AllocsPerRun(100, batch); n != 0 {
			t.Errorf("%s: SealBatch: %v allocs per batch", a.name, n)
		}
	}
}

// TestSealBatch: SealBatch over chunks that mix two SAs and packets of
// different lengths (the interleaved CBC loop's common part and the rest
// of each packet) gives packets that open to their payloads, in order.
func TestSealBatch(t *testing.T) {
	for _, a := range parallelAlgs {
		t.Run(a.name, func(t *testing.T) {
			out1, in1 := pair(t, childSA(a, isakmp.ProtoESP, 0x7100), childsa.ModeTunnel, 0)
			c2 := childSA(a, isakmp.ProtoESP, 0x7200)
			if len(c2.EncKey) > 0 {
				c2.EncKey = key(len(c2.EncKey), 77)
			}
			out2, in2 := pair(t, c2, childsa.ModeTunnel, 0)
			rng := rand.New(rand.NewPCG(9, 10))
			const n = 400
			pkts := make([][]byte, n)
			jobs := make([]PendingESP, n)
			sa := make([]int, n)
			for i := range n {
				out := out1
				if sa[i] = 0; rng.IntN(5) == 0 { // mostly runs of one SA, sometimes the other
					out, sa[i] = out2, 1
				}
				inner := ipv4Packet(4+rng.IntN(1400), 17, 0)
				binary.BigEndian.PutUint32(inner[IPv4HeaderLen:], uint32(i))
				var err error
				if pkts[i], jobs[i], err = out.PrepareESP(make([]byte, 0, 2048), inner, ProtoIPv4); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			for lo := 0; lo < n; {
				hi := min(n, lo+1+rng.IntN(12))
				wg.Add(1)
				go func(lo, hi, lane int) {
					defer wg.Done()
					SealBatch(lane, jobs[lo:hi])
				}(lo, hi, rng.IntN(3))
				lo = hi
			}
			wg.Wait()
			for i, p := range pkts {
				in := in1
				if sa[i] == 1 {
					in = in2
				}
				inner, _, err := in.OpenESP(nil, p)
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				if got := binary.BigEndian.Uint32(inner[IPv4HeaderLen:]); got != uint32(i) {
					t.Fatalf("packet %d opened to payload %d", i, got)
				}
			}
		})
	}
}
