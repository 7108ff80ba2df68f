package gateway

import (
	"encoding/json"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/gwconfig"
	"github.com/vpnlab/vpnlab/ike/policy"
	"github.com/vpnlab/vpnlab/ike/status"
)

func TestAWSLogFormat(t *testing.T) {
	c := &gwconfig.Config{
		IKE:     policy.Config{Tunnels: []policy.Tunnel{{Name: "tunnel1", LocalAddr: netip.MustParseAddr("203.0.113.10"), DPDTimeout: 40 * time.Second}}},
		Tunnels: []gwconfig.Tunnel{{Name: "tunnel1", Connection: "vpn-0abc"}},
	}
	st := newAWSTunnelStates(c)
	ch := make(chan status.Event, 4)
	ch <- status.Event{Tunnel: "tunnel1", Type: "phase1-state", Detail: map[string]string{"state": "Established"}}
	ch <- status.Event{Tunnel: "tunnel1", Type: "nat-detected"}
	ch <- status.Event{Tunnel: "tunnel1", Type: "phase2-state", Detail: map[string]string{"state": "Negotiating"}}
	close(ch)
	st.attach(ch)
	st.follow()
	e := &logrus.Entry{Time: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC), Level: logrus.WarnLevel,
		Message: "Peer is not responsive - Declaring peer dead", Data: logrus.Fields{"tunnel": "tunnel1", "action": "restart", "error": errors.New("x")}}
	b, err := awsFormatter{states: st}.Format(e)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	want := map[string]any{
		"VpnLogCreationTimestamp": "2026-11-21T12:00:00Z", "VpnConnectionId": "vpn-0abc", "TunnelOutsideIPAddress": "203.0.113.10",
		"TunnelDPDEnabled": true, "TunnelCGWNATTDetectionStatus": true, "TunnelIKEPhase1State": "Established",
		"TunnelIKEPhase2State": "Negotiating", "VpnLogDetail": "Peer is not responsive - Declaring peer dead",
		"VpnlabDetail": "Peer is not responsive - Declaring peer dead action=restart error=x",
		"Level":        "warning", "Tunnel": "tunnel1",
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %v, want %v (record %s)", k, rec[k], v, b)
		}
	}
	// On the customer side the engine's wording stays in VpnLogDetail.
	c.Profile = gwconfig.CGW
	cst := newAWSTunnelStates(c)
	b, _ = awsFormatter{states: cst}.Format(&logrus.Entry{Time: e.Time, Level: logrus.InfoLevel,
		Message: "received DELETE for phase 2 SA", Data: logrus.Fields{"tunnel": "tunnel1", "spi": "c0ffee01"}})
	rec = nil
	if err := json.Unmarshal(b, &rec); err != nil || rec["VpnLogDetail"] != "received DELETE for phase 2 SA spi=c0ffee01" || rec["VpnlabDetail"] != nil {
		t.Fatalf("cgw record %s (%v)", b, err)
	}
	// A record of no tunnel still has the connection and address fields.
	b, _ = awsFormatter{states: st}.Format(&logrus.Entry{Time: e.Time, Level: logrus.InfoLevel, Message: "starting", Data: logrus.Fields{}})
	if err := json.Unmarshal(b, &rec); err != nil || rec["VpnConnectionId"] != "" || rec["VpnLogDetail"] != "starting" {
		t.Fatalf("gateway record %s (%v)", b, err)
	}
}
