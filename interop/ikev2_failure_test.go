package interop

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vpnlab/vpnlab/control"
	"github.com/vpnlab/vpnlab/ike/status"
	"github.com/vpnlab/vpnlab/internal/netlab"
	"github.com/vpnlab/vpnlab/internal/strongswan"
)

// IKEv2 failures against strongSwan: a wrong pre-shared key and no common
// IKE proposal, with charon as initiator (our vgw must refuse and say why)
// and as responder (our cgw must report charon's notify and say why); no
// common child proposal and disjoint traffic selectors (TS_UNACCEPTABLE)
// refused by charon, where the IKE SA stays up without a child (RFC 7296
// section 2.21.2). Each case checks charon's log line, our tunnel's
// last_error and our event stream, and that no CHILD_SA exists on either
// side.

// v2Failure is one failing negotiation.
type v2Failure struct {
	name string
	// wrongPSK: charon gets another PSK than ours.
	wrongPSK bool
	ourIKE   string // our phase 1 proposal
	swIKE    string // charon's
	// ourESP and swESP are the child proposals ("" = esp-aes128-sha256).
	ourESP, swESP string
	// Traffic selectors of both sides ("" = 0.0.0.0/0).
	ourLocalTS, ourRemoteTS, swLocalTS, swRemoteTS string
	// childOnly: the IKE SA is established and only the first CHILD_SA is
	// refused (RFC 7296 section 2.21.2 keeps the IKE SA).
	childOnly bool
	// charonLog is the line charon must log.
	charonLog *regexp.Regexp
	// ourError is what our last_error and an event must say.
	ourError *regexp.Regexp
}

// notifyName matches an IKEv2 notify name in either spelling (RFC 7296's
// AUTHENTICATION_FAILED, our IKEv1 engine's AUTHENTICATION-FAILED).
func notifyName(n string) string { return strings.ReplaceAll(n, "_", "[-_ ]") }

var v2Failures = []struct {
	v2Failure
	charonInitiates bool
}{
	{v2Failure{
		name: "psk", wrongPSK: true, ourIKE: "aes256-sha256-modp2048", swIKE: "aes256-sha256-modp2048",
		charonLog: regexp.MustCompile(`received AUTHENTICATION_FAILED notify error`),
		ourError:  regexp.MustCompile(`(?i)pre-shared key|` + notifyName("AUTHENTICATION_FAILED")),
	}, true},
	{v2Failure{
		name: "psk", wrongPSK: true, ourIKE: "aes256-sha256-modp2048", swIKE: "aes256-sha256-modp2048",
		charonLog: regexp.MustCompile(`tried \d+ shared keys? for '[^']+' - '[^']+', but MAC mismatched`),
		ourError:  regexp.MustCompile(notifyName("AUTHENTICATION_FAILED")),
	}, false},
	{v2Failure{
		name: "ike-proposal", ourIKE: "aes256-sha256-modp2048", swIKE: "aes128-sha1-modp2048",
		charonLog: regexp.MustCompile(`received NO_PROPOSAL_CHOSEN notify error`),
		ourError:  regexp.MustCompile(`(?i)proposal`),
	}, true},
	{v2Failure{
		name: "ike-proposal", ourIKE: "aes128-sha1-modp2048", swIKE: "aes256-sha256-modp2048",
		charonLog: regexp.MustCompile(`received proposals: IKE:AES_CBC_128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_2048|received proposals unacceptable`),
		ourError:  regexp.MustCompile(notifyName("NO_PROPOSAL_CHOSEN")),
	}, false},
	{v2Failure{
		name: "child-proposal", ourIKE: "aes256-sha256-modp2048", swIKE: "aes256-sha256-modp2048",
		ourESP: "esp-aes256gcm16", swESP: "aes128-sha1", childOnly: true,
		charonLog: regexp.MustCompile(`received NO_PROPOSAL_CHOSEN notify, no CHILD_SA built`),
		ourError:  regexp.MustCompile(`(?i)phase2-failed .*proposal`),
	}, true},
	{v2Failure{
		name: "child-proposal", ourIKE: "aes256-sha256-modp2048", swIKE: "aes256-sha256-modp2048",
		ourESP: "esp-aes128-sha1", swESP: "aes256gcm16", childOnly: true,
		charonLog: regexp.MustCompile(`no acceptable proposal found|failed to establish CHILD_SA`),
		ourError:  regexp.MustCompile(`(?i)phase2-failed .*` + notifyName("NO_PROPOSAL_CHOSEN")),
	}, false},
	{v2Failure{
		name: "ts", ourIKE: "aes256-sha256-modp2048", swIKE: "aes256-sha256-modp2048",
		ourRemoteTS: "10.10.0.0/16", swLocalTS: "192.168.0.0/16", childOnly: true,
		charonLog: regexp.MustCompile(`received TS_UNACCEPTABLE notify, no CHILD_SA built`),
		ourError:  regexp.MustCompile(`(?i)phase2-failed .*(traffic selector|TS_UNACCEPTABLE)`),
	}, true},
	{v2Failure{
		name: "ts", ourIKE: "aes256-sha256-modp2048", swIKE: "aes256-sha256-modp2048",
		ourLocalTS: "10.10.0.0/16", swRemoteTS: "192.168.0.0/16", childOnly: true,
		charonLog: regexp.MustCompile(`traffic selectors 0\.0\.0\.0/0 === 10\.10\.0\.0/16 unacceptable`),
		ourError:  regexp.MustCompile(`(?i)phase2-failed .*` + notifyName("TS_UNACCEPTABLE")),
	}, false},
}

// TestIKEv2Failures: a wrong PSK and a proposal mismatch, each with charon
// initiating to our vgw and with our cgw initiating to charon (direct
// topology: NAT does not change how authentication or proposal choice
// fails).
func TestIKEv2Failures(t *testing.T) {
	requirements(t)
	for _, f := range v2Failures {
		role := "cgw-initiates"
		if f.charonInitiates {
			role = "charon-initiates"
		}
		t.Run(f.name+"/"+role, func(t *testing.T) {
			v2RunFailure(t, f.v2Failure, f.charonInitiates)
		})
	}
}

func v2RunFailure(t *testing.T, f v2Failure, charonInitiates bool) {
	tp := topologies[0]
	e := newEnv(t, tp)
	psk := newPSK(t)
	swPSK := psk
	if f.wrongPSK {
		swPSK = newPSK(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := e.lab.LogDir()
	ourESP, swESP := or(f.ourESP, "esp-aes128-sha256"), or(f.swESP, "aes128-sha256")
	conn := strongswan.Conn{
		Name: strongswanConn, Version: 2, Proposals: []string{f.swIKE}, Encap: true, PSK: swPSK,
		ReauthTime: "0s", RekeyTime: "0s", KeyingTries: "1",
		Children: []strongswan.Child{{Name: strongswanCSA, ESPProposals: []string{swESP},
			LocalTS: []string{or(f.swLocalTS, "0.0.0.0/0")}, RemoteTS: []string{or(f.swRemoteTS, "0.0.0.0/0")}, LifeTime: "3600s", RekeyTime: "0s"}},
	}
	tunnel := fmt.Sprintf("    local_ts: %s\n    remote_ts: %s\n    ike_versions: [ikev2]\n    phase1: {proposals: [%s]}\n    phase2: {proposals: [%s]}\n",
		or(f.ourLocalTS, "0.0.0.0/0"), or(f.ourRemoteTS, "0.0.0.0/0"), f.ourIKE, ourESP)
	var g *gateway
	var c *strongswan.Charon
	if charonInitiates {
		conn.LocalAddrs, conn.RemoteAddrs = tp.cgwLocal.String(), tp.vgwAddr.String()
		g = e.startGateway(buildGateway(t, "vgw"), "vgw", v2AnyConfig(dir, "vgw", tp.vgwAddr.String(), tp.cgwID.String(), false, tunnel), psk, e.vgw)
		c = e.startCharon(ctx, e.cgw, conn)
	} else {
		conn.LocalAddrs, conn.RemoteAddrs = tp.vgwAddr.String(), tp.cgwID.String()
		c = e.startCharon(ctx, e.vgw, conn)
		g = e.startGateway(buildGateway(t, "cgw"), "cgw", v2AnyConfig(dir, "cgw", tp.cgwLocal.String(), tp.vgwAddr.String(), false, tunnel), psk, e.cgw)
	}
	events, err := control.Dial(g.control).Events(ctx)
	if err != nil {
		t.Fatalf("our %s: events: %v", g.name, err)
	}
	if charonInitiates {
		out, err := c.Initiate(ctx, strongswanCSA, upTimeout)
		if err == nil {
			t.Fatalf("swanctl --initiate succeeded, want a failure:\n%s", out)
		}
		t.Logf("swanctl --initiate failed as it should: %v: %s", err, lastLine(out))
	} else if err := control.Dial(g.control).Initiate(ctx, tunnelName); err != nil {
		t.Fatalf("our cgw: initiate: %v", err)
	}
	ev := v2WaitEvent(t, events, f.ourError, 15*time.Second)
	t.Logf("our %s: event %s %v", g.name, ev.Type, ev.Detail)
	v2WaitLog(t, c, f.charonLog, 5*time.Second)
	tu, err := control.Dial(g.control).Tunnel(ctx, tunnelName)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("our %s: phase1 %s phase2 %s status %s last_error %q", g.name, tu.Phase1State, tu.Phase2State, tu.Status, tu.LastError)
	if (tu.Phase1State == "Established") != f.childOnly || len(tu.SAs) != 0 || tu.Status != "DOWN" || tu.Phase2State == "Established" {
		t.Errorf("our %s: phase1 %s phase2 %s, %d SAs, status %s; want phase 1 established %v, no child SA, DOWN",
			g.name, tu.Phase1State, tu.Phase2State, len(tu.SAs), tu.Status, f.childOnly)
	}
	// last_error has the message without the event type.
	if re := regexp.MustCompile(strings.TrimPrefix(f.ourError.String(), "(?i)phase2-failed .*")); !re.MatchString(tu.LastError) {
		t.Errorf("our %s: last_error %q does not say why (want /%s/)", g.name, tu.LastError, re)
	}
	sas, err := c.ListSAs(ctx)
	if err != nil {
		t.Fatalf("charon: list-sas: %v", err)
	}
	t.Logf("charon:%s", strongswan.Summary(sas))
	for _, sa := range sas {
		if sa.State == "ESTABLISHED" && !f.childOnly {
			t.Errorf("charon: an IKE_SA is established")
		}
		for _, ch := range sa.Children {
			if ch.State == "INSTALLED" {
				t.Errorf("charon: a CHILD_SA is installed")
			}
		}
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// v2AnyConfig is one tunnel without a data path (the negotiation is what
// fails); extra holds its selectors, versions and proposals.
func v2AnyConfig(dir, name, local, remote string, start bool, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "log: {format: json, level: debug}\ncontrol: {listen: \"unix:%s/%s.sock\"}\nlab_timers: true\n", dir, name)
	fmt.Fprintf(&b, "ike: {retransmit_timeout: 500ms, retransmit_tries: 3}\n")
	fmt.Fprintf(&b, "tunnels:\n  - name: %s\n    local_address: %s\n    remote_address: %s\n    psk_env: %s\n",
		tunnelName, local, remote, pskEnv)
	if start {
		b.WriteString("    startup_action: start\n")
	} else {
		b.WriteString("    startup_action: add\n") // the cgw profile's default is start
	}
	b.WriteString(extra)
	return b.String()
}

// v2WaitEvent waits for an event of tunnel1 whose type or details match re.
func v2WaitEvent(t *testing.T, events <-chan status.Event, re *regexp.Regexp, d time.Duration) status.Event {
	t.Helper()
	timeout := time.After(d)
	var seen []string
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("event stream closed; seen: %v", seen)
			}
			if ev.Tunnel != tunnelName {
				continue
			}
			s := fmt.Sprintf("%s %v", ev.Type, ev.Detail)
			seen = append(seen, s)
			if ev.Type != "phase1-up" && ev.Type != "phase2-up" && re.MatchString(s) {
				return ev
			}
		case <-timeout:
			t.Fatalf("no event matching /%s/ within %v; seen: %v", re, d, seen)
		}
	}
}

// v2WaitLog waits until charon's log has a line matching re.
func v2WaitLog(t *testing.T, c *strongswan.Charon, re *regexp.Regexp, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		tail := netlab.TailFile(c.LogPath(), 2000)
		if m := re.FindString(tail); m != "" {
			t.Logf("charon: %q", m)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("charon's log has no line matching /%s/ within %v", re, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
