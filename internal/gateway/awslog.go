package gateway

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/gwconfig"
	"github.com/vpnlab/vpnlab/ike"
)

// The "aws" log format writes every log record as one JSON object with the
// fields of AWS Site-to-Site VPN logs (AWSUG log-contents.md):
//
//	VpnLogCreationTimestamp        RFC 3339 time of the record
//	VpnConnectionId                the tunnel's connection name ("" if none)
//	TunnelOutsideIPAddress         the tunnel's outside address on this gateway
//	TunnelDPDEnabled               whether DPD is configured for the tunnel
//	TunnelCGWNATTDetectionStatus   whether NAT-T was detected on the tunnel
//	TunnelIKEPhase1State           Established, Rekeying, Negotiating or Down
//	TunnelIKEPhase2State           the same for phase 2
//	VpnLogDetail                   what happened: the message and its fields
//
// plus Level and, for records that belong to no tunnel, empty tunnel
// fields. The states come from the engine's events (awsTunnelStates), so
// the formatter never calls into the engine (which may be the caller).

// awsTunnelStates is the formatter's view of each tunnel, updated from the
// engine's event stream.
type awsTunnelStates struct {
	mu      sync.Mutex
	tunnels map[string]*awsTunnel
}

type awsTunnel struct {
	connection, outside string
	dpd                 bool
	natt                bool
	p1, p2              string
}

func newAWSTunnelStates(c *gwconfig.Config) *awsTunnelStates {
	s := &awsTunnelStates{tunnels: map[string]*awsTunnel{}}
	for i, t := range c.IKE.Tunnels {
		at := &awsTunnel{outside: t.LocalAddr.String(), dpd: t.DPDTimeout > 0, p1: "Down", p2: "Down"}
		if i < len(c.Tunnels) {
			at.connection = c.Tunnels[i].Connection
		}
		s.tunnels[t.Name] = at
	}
	return s
}

// follow updates the states from events until the channel closes.
func (s *awsTunnelStates) follow(events <-chan ike.Event) {
	for ev := range events {
		s.mu.Lock()
		if t := s.tunnels[ev.Tunnel]; t != nil {
			switch ev.Type {
			case "phase1-state":
				t.p1 = ev.Detail["state"]
			case "phase2-state":
				t.p2 = ev.Detail["state"]
			case "nat-detected":
				t.natt = true
			case "phase1-up":
				t.natt = ev.Detail["nat_detected"] == "true"
			}
		}
		s.mu.Unlock()
	}
}

// awsFormatter is the logrus formatter of the "aws" log format.
type awsFormatter struct{ states *awsTunnelStates }

func (f awsFormatter) Format(e *logrus.Entry) ([]byte, error) {
	rec := map[string]any{
		"VpnLogCreationTimestamp": e.Time.UTC().Format(time.RFC3339Nano),
		"Level":                   e.Level.String(),
	}
	name, _ := e.Data["tunnel"].(string)
	rec["VpnConnectionId"], rec["TunnelOutsideIPAddress"] = "", ""
	if f.states != nil && name != "" {
		f.states.mu.Lock()
		if t := f.states.tunnels[name]; t != nil {
			rec["VpnConnectionId"] = t.connection
			rec["TunnelOutsideIPAddress"] = t.outside
			rec["TunnelDPDEnabled"] = t.dpd
			rec["TunnelCGWNATTDetectionStatus"] = t.natt
			rec["TunnelIKEPhase1State"] = t.p1
			rec["TunnelIKEPhase2State"] = t.p2
		}
		f.states.mu.Unlock()
	}
	keys := make([]string, 0, len(e.Data))
	for k := range e.Data {
		if k != "tunnel" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(e.Message)
	for _, k := range keys {
		v := e.Data[k]
		if err, ok := v.(error); ok {
			v = err.Error()
		}
		fmt.Fprintf(&b, " %s=%v", k, v)
	}
	if name != "" {
		rec["Tunnel"] = name
	}
	rec["VpnLogDetail"] = b.String()
	out, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}
