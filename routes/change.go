package routes

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// ChangeKind says what a Change is about.
type ChangeKind int

const (
	// Learned: a tunnel has a new path for a prefix.
	Learned ChangeKind = iota + 1
	// Updated: a tunnel's path for a prefix changed attributes.
	Updated
	// Withdrawn: a tunnel's path for a prefix is gone.
	Withdrawn
	// Installed: a prefix got its first route (To = active tunnels).
	Installed
	// Removed: a prefix lost its last path (From = previously active tunnels).
	Removed
	// BestMoved: the active tunnels of a prefix changed (From -> To).
	BestMoved
	// LimitExceeded: a tunnel sent more BGP prefixes than the limit; all of
	// its BGP paths were dropped.
	LimitExceeded
)

var changeKindNames = map[ChangeKind]string{
	Learned:       "learned",
	Updated:       "updated",
	Withdrawn:     "withdrawn",
	Installed:     "installed",
	Removed:       "removed",
	BestMoved:     "best-moved",
	LimitExceeded: "limit-exceeded",
}

func (k ChangeKind) String() string {
	if s, ok := changeKindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("change(%d)", int(k))
}

// MarshalText makes ChangeKind readable in JSON.
func (k ChangeKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Change is one event of the route table.
type Change struct {
	Time   time.Time    `json:"time"`
	Kind   ChangeKind   `json:"kind"`
	Prefix netip.Prefix `json:"prefix,omitzero"`
	// Tunnel is the tunnel a path change or limit event is about.
	Tunnel string `json:"tunnel,omitempty"`
	Source Source `json:"source,omitempty"`
	// From and To are the active tunnels before and after (Installed,
	// Removed, BestMoved).
	From []string `json:"from,omitempty"`
	To   []string `json:"to,omitempty"`
	// Reason explains a route change, or details a limit event.
	Reason string `json:"reason,omitempty"`
}

func (c Change) String() string {
	var b strings.Builder
	b.WriteString(c.Kind.String())
	if c.Prefix.IsValid() {
		b.WriteString(" " + c.Prefix.String())
	}
	if c.Tunnel != "" {
		fmt.Fprintf(&b, " tunnel=%s", c.Tunnel)
	}
	if c.Source != 0 {
		fmt.Fprintf(&b, " source=%s", c.Source)
	}
	if c.From != nil {
		fmt.Fprintf(&b, " from=%s", strings.Join(c.From, ","))
	}
	if c.To != nil {
		fmt.Fprintf(&b, " to=%s", strings.Join(c.To, ","))
	}
	if c.Reason != "" {
		fmt.Fprintf(&b, " (%s)", c.Reason)
	}
	return b.String()
}
