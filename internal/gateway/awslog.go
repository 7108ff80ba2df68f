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
	"github.com/vpnlab/vpnlab/ike/status"
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
//	VpnLogDetail                   what happened
//
// plus vpnlab's Level and Tunnel; records that belong to no tunnel have
// empty connection and address fields and no tunnel state. The states come
// from the engine's events (awsTunnelStates), so the formatter never calls
// into the engine (which may be the caller).
//
// On the AWS side (vgw) the records AWS documents an IKEv1 message for
// carry AWS's wording in VpnLogDetail (awsMessage; IKEv2's: awsMessageV2)
// and the engine's own
// message with its fields in VpnlabDetail; every other record has the
// message and its fields in VpnLogDetail. docs/metrics.md has the table.

// awsTunnelStates is the formatter's view of each tunnel, updated from the
// engine's event stream.
type awsTunnelStates struct {
	awsSide bool // vgw: use AWS's documented messages
	mu      sync.Mutex
	tunnels map[string]*awsTunnel
	events  <-chan status.Event // the engine's events (attach)
}

type awsTunnel struct {
	connection, outside string
	remote              string // the peer's (customer gateway's) address
	dpd                 bool
	natt                bool
	p1, p2              string
}

func newAWSTunnelStates(c *gwconfig.Config) *awsTunnelStates {
	s := &awsTunnelStates{awsSide: c.Profile == gwconfig.VGW, tunnels: map[string]*awsTunnel{}}
	for i, t := range c.IKE.Tunnels {
		at := &awsTunnel{outside: t.LocalAddr.String(), remote: t.RemoteAddr.String(), dpd: t.DPDTimeout > 0, p1: "Down", p2: "Down"}
		if i < len(c.Tunnels) {
			at.connection = c.Tunnels[i].Connection
		}
		s.tunnels[t.Name] = at
	}
	return s
}

// attach gives the states the engine's event subscription. Records are
// formatted on the goroutine that logs them, which for the engine's records
// is the goroutine that emitted the events just before: so Format applies
// every event already queued before it reads a tunnel's fields, and a
// record never shows a state older than the events emitted before it.
func (s *awsTunnelStates) attach(events <-chan status.Event) {
	s.mu.Lock()
	s.events = events
	s.mu.Unlock()
}

// follow keeps the subscription from filling while nothing is logged: it
// applies queued events every 50 ms until the channel is closed.
func (s *awsTunnelStates) follow() {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		s.mu.Lock()
		open := s.drainLocked()
		s.mu.Unlock()
		if !open {
			return
		}
	}
}

// drainLocked applies every queued event; false once the channel is closed
// (or none was attached).
func (s *awsTunnelStates) drainLocked() bool {
	if s.events == nil {
		return false
	}
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				s.events = nil
				return false
			}
			s.applyLocked(ev)
		default:
			return true
		}
	}
}

func (s *awsTunnelStates) applyLocked(ev status.Event) {
	t := s.tunnels[ev.Tunnel]
	if t == nil {
		return
	}
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

// awsFormatter is the logrus formatter of the "aws" log format.
type awsFormatter struct{ states *awsTunnelStates }

func (f awsFormatter) Format(e *logrus.Entry) ([]byte, error) {
	rec := map[string]any{
		"VpnLogCreationTimestamp": e.Time.UTC().Format(time.RFC3339Nano),
		"Level":                   e.Level.String(),
	}
	name, _ := e.Data["tunnel"].(string)
	rec["VpnConnectionId"], rec["TunnelOutsideIPAddress"] = "", ""
	cgw := ""
	if f.states != nil && name != "" {
		f.states.mu.Lock()
		f.states.drainLocked()
		if t := f.states.tunnels[name]; t != nil {
			rec["VpnConnectionId"] = t.connection
			rec["TunnelOutsideIPAddress"] = t.outside
			rec["TunnelDPDEnabled"] = t.dpd
			rec["TunnelCGWNATTDetectionStatus"] = t.natt
			rec["TunnelIKEPhase1State"] = t.p1
			rec["TunnelIKEPhase2State"] = t.p2
			cgw = t.remote
		}
		f.states.mu.Unlock()
	}
	detail := describeEntry(e)
	rec["VpnLogDetail"] = detail
	if f.states != nil && f.states.awsSide {
		if msg := awsMessage(e, cgw); msg != "" {
			rec["VpnLogDetail"], rec["VpnlabDetail"] = msg, detail
		}
	}
	if name != "" {
		rec["Tunnel"] = name
	}
	out, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// describeEntry is the record's message followed by its fields (but the
// tunnel) as key=value, sorted.
func describeEntry(e *logrus.Entry) string {
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
	return b.String()
}
