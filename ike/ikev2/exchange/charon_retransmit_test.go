package exchange

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/internal/netlab"
	"github.com/vpnlab/vpnlab/internal/strongswan"
)

// TestCharonRetransmitSchedule: charon, configured with a short
// retransmission schedule, retransmits its unanswered IKE_SA_INIT at the
// times our Schedule with the same parameters computes (timeout * base^n)
// and gives up when GiveUpAfter says.
func TestCharonRetransmitSchedule(t *testing.T) {
	if err := strongswan.Available(nil); err != nil {
		t.Skip(err)
	}
	s := Schedule{Timeout: 500 * time.Millisecond, Base: 1.8, Tries: 3}
	_, cgwNS, vgwNS := netlab.NewPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sock := listenIn(t, vgwNS, "10.99.0.1:500")
	extra := "  retransmit_timeout = 0.5\n  retransmit_base = 1.8\n  retransmit_tries = 3\n  retransmit_jitter = 0\n"
	charon := startCharon(ctx, t, cgwNS, strongswan.Options{LogLevel: 1, Extra: extra}, strongswan.Conn{
		Name: "v2", Version: 2, LocalAddrs: "10.99.0.2", RemoteAddrs: "10.99.0.1", KeyingTries: "1",
		Proposals: []string{"aes128-sha256-modp2048"}, PSK: charonPSK,
		Children: []strongswan.Child{{Name: "v2-net", LocalTS: []string{"0.0.0.0/0"}, RemoteTS: []string{"0.0.0.0/0"},
			ESPProposals: []string{"aes128-sha256"}}},
	})
	go func() { _, _ = charon.Initiate(ctx, "v2-net", 20*time.Second) }()
	var arrivals []time.Time
	var first []byte
	buf := make([]byte, 65535)
	deadline := time.Now().Add(s.GiveUpAfter() + 15*time.Second)
	for time.Now().Before(deadline) {
		_ = sock.conn.SetReadDeadline(deadline)
		n, _, err := sock.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			break
		}
		if first == nil {
			first = append([]byte(nil), buf[:n]...)
		} else if string(buf[:n]) != string(first) {
			t.Fatalf("datagram %d differs from the first: not a retransmission", len(arrivals)+1)
		}
		arrivals = append(arrivals, time.Now())
		if len(arrivals) == s.Tries+1 {
			deadline = time.Now().Add(s.Wait(s.Tries) + time.Second) // nothing may follow
		}
	}
	if len(arrivals) != s.Tries+1 {
		t.Fatalf("%d transmissions, want %d", len(arrivals), s.Tries+1)
	}
	// Each wait is measured from the previous transmission, as charon
	// (and Retransmission.Next) schedule it.
	// The slack is for scheduling on a loaded 2-core machine: 250 ms or a
	// fifth of the wait, whichever is more. It still tells a base of 1.8
	// from 2 (the last waits differ by 0.4 s and 1.1 s).
	slack := func(wait time.Duration) time.Duration { return max(250*time.Millisecond, wait/5) }
	r := s.Start(arrivals[0])
	for i := 1; i < len(arrivals); i++ {
		if d, sl := arrivals[i].Sub(r.Timer()), slack(s.Wait(i-1)); d < -sl || d > sl {
			t.Errorf("retransmission %d %v after the previous one, our schedule says %v", i, arrivals[i].Sub(arrivals[i-1]), s.Wait(i-1))
		}
		if !r.Next(arrivals[i]) {
			t.Fatalf("our schedule gives up before retransmission %d", i)
		}
	}
	if r.Next(r.Timer()) {
		t.Error("our schedule resends a fourth time")
	}
	gaveUp := charonGaveUp(t, charon.LogPath(), r.Timer().Add(3*time.Second))
	if d, sl := gaveUp.Sub(r.Timer()), slack(s.Wait(s.Tries)); d < -sl || d > sl {
		t.Errorf("charon gave up %v after its last retransmission, our schedule says %v", gaveUp.Sub(arrivals[len(arrivals)-1]), s.Wait(s.Tries))
	}
	t.Logf("charon retransmitted at %v and gave up at %v (ours: %v)", offsets(arrivals), gaveUp.Sub(arrivals[0]).Round(10*time.Millisecond), s.GiveUpAfter())
}

// charonGaveUp returns the time of charon's "giving up" log line, waiting
// for it until wait.
func charonGaveUp(t *testing.T, log string, wait time.Time) time.Time {
	t.Helper()
	for {
		b, _ := os.ReadFile(log)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "giving up after 3 retransmits") && len(l) > 23 {
				at, err := time.ParseInLocation("2006-01-02 15:04:05.000", l[:23], time.Local)
				if err != nil {
					t.Fatalf("log line %q: %v", l, err)
				}
				return at
			}
		}
		if time.Now().After(wait) {
			t.Fatal("charon did not log giving up")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func offsets(ts []time.Time) []time.Duration {
	var out []time.Duration
	for _, x := range ts[1:] {
		out = append(out, x.Sub(ts[0]).Round(10*time.Millisecond))
	}
	return out
}
