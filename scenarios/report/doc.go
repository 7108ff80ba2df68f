// Package report turns a scenario run (Run: steps, assertions, the events of
// both gateways and of the runner, traffic flows) into what people and CI
// read afterwards:
//
//   - WriteSummary: the terminal summary (verdict, steps, interesting tunnel
//     events, flows, artifacts) in aligned columns; WriteSummaryOptions adds
//     colour.
//   - WriteJSON: the whole run as a JSON timeline (format below); ReadJSON
//     reads it back.
//   - WriteJUnit: JUnit XML, one testcase per step.
//   - WriteSVG: the failover picture; WriteHTML: a self-contained page with
//     the picture and tables (no script, nothing loaded from elsewhere).
//   - WriteFiles: all of them into an output folder.
//
// The writers only read the Run; they accept a Run with no steps, events or
// flows (a run that aborted at setup).
//
// # The picture
//
// Time runs left to right in seconds from Run.Start. From top to bottom: the
// steps (a box per step, green passed, red failed, orange error, grey
// skipped; a dotted line at each step's start); the runner's events
// (impair, restore, gateway start/stop/kill: a labelled vertical line
// through the whole picture); one band per gateway and tunnel coloured by
// the tunnel's state as that gateway saw it; one "BGP active path" band per
// gateway and prefix of the route decisions, coloured by the tunnel that
// carries it (split for ECMP); one chart per flow with a bar per series
// bucket, the received share green and the lost share red, the longest gap
// shaded and labelled "outage 4.0 s"; the axis; the legend. Every shape has
// a tooltip.
//
// A tunnel band's state follows the gateway's events: "up" while an IPsec SA
// pair is installed (tunnel-status UP; phase2-up/phase2-down when there is
// no tunnel-status), "IPsec up, BGP not Established" when the tunnel has a
// BGP session that is not Established, "negotiating" while phase 1 or 2 is
// Negotiating or Rekeying without an SA pair, "DPD: peer dead" from a
// dpd-state dead until the peer is alive again (dpd-state alive, phase1-up,
// phase2-up, tunnel-status UP), "down" otherwise, "gateway stopped" after a
// runner gateway-stop or gateway-kill (Detail "gateway") until
// gateway-start, and "no data" before the first event.
//
// # JSON format
//
// WriteJSON writes one object, indented, field names in snake_case. Times
// are RFC 3339 with nine fractional digits ("2026-11-21T10:55:39.761000000Z")
// and are left out when unknown; every step, event, flow and bucket also has
// offset_s, seconds from the run's start (a float, nanosecond precision).
//
//	{
//	  "format": "vpnlab-report/1",
//	  "scenario": "failover", "file": "scenarios/failover.yaml", "description": "...",
//	  "vars": {"name": "value"},
//	  "start": "...", "end": "...", "duration_s": 42.5,
//	  "passed": false, "verdict": "FAIL",    // verdict: "PASS" or "FAIL"
//	  "error": "...",                        // only when the runner aborted
//	  "gateways": ["cgw", "vgw"], "tunnels": ["tunnel1", "tunnel2"],
//	  "steps": [{
//	    "index": 1, "name": "...", "action": "...", "line": 12,
//	    "start": "...", "end": "...", "offset_s": 0.5, "duration_s": 2.1,
//	    "status": "pass|fail|error|skipped", "message": "...",
//	    "asserts": [{"expr": "...", "line": 13, "passed": false, "expected": "< 3s", "seen": "4.0s"}]
//	  }],
//	  "events": [{                           // in time order
//	    "time": "...", "offset_s": 5.0, "source": "cgw|vgw|runner", "tunnel": "tunnel1",
//	    "type": "dpd-state", "detail": {"state": "dead"},
//	    "text": "DPD: peer dead"             // DescribeEvent
//	  }],
//	  "flows": [{
//	    "name": "ping", "proto": "icmp", "from": "...", "to": "...",
//	    "start": "...", "end": "...", "offset_s": 1.0,
//	    "sent": 300, "received": 260, "lost": 40, "reordered": 0, "duplicates": 0,
//	    "loss_pct": 13.3, "max_gap_s": 4.0,
//	    "max_gap_from": "...", "max_gap_to": "...", "max_gap_from_offset_s": 5.1, "max_gap_to_offset_s": 9.1,
//	    "series": [{"start": "...", "offset_s": 1.0, "sent": 10, "received": 10}]
//	  }],
//	  "artifacts": [{"name": "...", "path": "failover.html", "what": "..."}],
//	  "metrics": [{                          // each gateway's /metrics about once a second
//	    "time": "...", "offset_s": 2.0, "gateway": "cgw",
//	    "values": {"vpnlab_tunnel_up{tunnel=\"tunnel1\"}": 1}  // vpnlab_ series changed since its previous sample
//	  }]
//	}
//
// Arrays are always present ([] when empty); optional strings are left out
// when empty. New fields may be added; a field's meaning does not change
// without a new "format".
package report
