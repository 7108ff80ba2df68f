package routes

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// ChangeKind says what a Change is about. Its value is the word used in logs
// and JSON.
type ChangeKind string

const (
	// Learned: a tunnel has a new path for a prefix.
	Learned ChangeKind = "learned"
	// Updated: a tunnel's path for a prefix changed attributes.
	Updated ChangeKind = "updated"
	// Withdrawn: a tunnel's path for a prefix is gone.
	Withdrawn ChangeKind = "withdrawn"
	// Installed: a prefix got its first route (To = active tunnels).
	Installed ChangeKind = "installed"
	// Removed: a prefix lost its last path (From = previously active tunnels).
	Removed ChangeKind = "removed"
	// BestMoved: the active tunnels of a prefix changed (From -> To).
	BestMoved ChangeKind = "best-moved"
	// LimitExceeded: a tunnel sent more BGP prefixes than the limit; all of
	// its BGP paths were dropped.
	LimitExceeded ChangeKind = "limit-exceeded"
)

func (k ChangeKind) String() string { return string(k) }

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
