package report

import "time"

// Run is everything a scenario run produced: its steps with their
// assertions, every event of both gateways and of the runner, the traffic
// flows and the files written. The runner fills it; the writers only read it.
type Run struct {
	Scenario    string            // scenario name
	File        string            // scenario file path
	Description string            // the scenario's description
	Vars        map[string]string // effective variables
	Start, End  time.Time         // End is zero if the run did not finish
	Passed      bool              // every step and assertion held
	Error       string            // a runner error that aborted the run (setup failure, missing tool), "" if none
	Gateways    []string          // e.g. ["cgw","vgw"]
	Tunnels     []string          // tunnel names in order, e.g. ["tunnel1","tunnel2"]
	Steps       []Step
	Events      []Event // every event of both gateways and of the runner, in time order
	Flows       []Flow
	Artifacts   []Artifact     // files in the output folder
	Metrics     []MetricSample // the gateways' metrics, sampled during the run (metrics.go)
}

// Step is one step of the scenario.
type Step struct {
	Index      int    // 1-based
	Name       string // user's name or a generated one
	Action     string // one-line description, e.g. "impair tunnel1: blackhole", "wait cgw tunnel1 phase2 up"
	Line       int    // line in the scenario file
	Start, End time.Time
	Status     string // StatusPass, StatusFail, StatusError or StatusSkipped
	Message    string // why it failed: "expected ... , seen ..."
	Asserts    []Assert
}

// Step statuses.
const (
	StatusPass    = "pass"
	StatusFail    = "fail"
	StatusError   = "error"
	StatusSkipped = "skipped"
)

// Assert is one assertion of a step.
type Assert struct {
	Expr     string // as written, e.g. "flow ping max_gap < 6s"
	Line     int
	Passed   bool
	Expected string // e.g. "< 6s"
	Seen     string // e.g. "7.2s"
}

// Event is one event of a gateway (the control API's event stream, see
// docs/control-api.md) or of the runner.
//
// Runner events (Source "runner") have the types "step-start", "step-end",
// "impair", "restore", "flow-start", "flow-stop", "gateway-start",
// "gateway-stop" and "gateway-kill". The writers read these Detail keys of
// them when present: "gateway" (the gateway a gateway-* event is about; the
// tunnel bands of that gateway show "stopped" after a stop or kill),
// "tunnel" (what an impair or restore applies to when Tunnel is empty;
// "target" for something else), "fault" (or "what": what an impairment
// does, e.g. "blackhole", "loss") with "percent", "flow" and "step". Other
// keys are shown as key=value.
type Event struct {
	Time   time.Time
	Source string // "cgw", "vgw" or "runner"
	Tunnel string
	Type   string // gateway event type, or a runner type (see above)
	Detail map[string]string
}

// Flow is one traffic flow measured during the run.
type Flow struct {
	Name, Proto, From, To                       string
	Start, End                                  time.Time
	Sent, Received, Lost, Reordered, Duplicates uint64
	LossPct                                     float64
	MaxGap                                      time.Duration // the longest time without a received packet
	MaxGapFrom, MaxGapTo                        time.Time
	Series                                      []Bucket // packets per time bucket, in time order
}

// Bucket counts a flow's packets sent in one time bucket and how many of
// them were received. A bucket ends where the next one starts (the last one
// is as long as the one before it).
type Bucket struct {
	Start          time.Time
	Sent, Received uint64
}

// Artifact is one file in the output folder.
type Artifact struct {
	Name, Path, What string // Path relative to the output folder
}

// Verdict is "PASS" or "FAIL".
func (r *Run) Verdict() string {
	if r.Passed && r.Error == "" {
		return "PASS"
	}
	return "FAIL"
}

// Duration is End-Start, or 0 if either is unknown.
func (r *Run) Duration() time.Duration {
	if r.Start.IsZero() || r.End.IsZero() || r.End.Before(r.Start) {
		return 0
	}
	return r.End.Sub(r.Start)
}

// Duration is End-Start, or 0 if either is unknown.
func (s *Step) Duration() time.Duration {
	if s.Start.IsZero() || s.End.IsZero() || s.End.Before(s.Start) {
		return 0
	}
	return s.End.Sub(s.Start)
}

// Failed is true for the statuses that count against the run.
func (s *Step) Failed() bool { return s.Status == StatusFail || s.Status == StatusError }
