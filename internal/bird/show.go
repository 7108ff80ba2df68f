package bird

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Protocol is one line of `show protocols`.
type Protocol struct {
	Name  string // e.g. "tun1"
	Proto string // BGP, Static, Kernel, Device
	Table string
	State string // up, start, down, ...
	Since string
	Info  string // for BGP: Established, Active, Connect, ... and the last error
}

// Established reports whether p is a BGP session in state Established.
func (p Protocol) Established() bool {
	return p.Proto == "BGP" && p.State == "up" && strings.HasPrefix(p.Info, "Established")
}

// FindProtocol returns the protocol named name.
func FindProtocol(ps []Protocol, name string) (Protocol, bool) {
	for _, p := range ps {
		if p.Name == name {
			return p, true
		}
	}
	return Protocol{}, false
}

// FormatProtocols renders ps one per line (for test logs).
func FormatProtocols(ps []Protocol) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "  %-8s %-7s %-8s %-6s %s %s\n", p.Name, p.Proto, p.Table, p.State, p.Since, p.Info)
	}
	return b.String()
}

// ParseProtocols parses the output of `birdc show protocols`: a banner, a
// header line (Name Proto Table State Since Info), one line per protocol.
// Since must be one token (Start sets `timeformat protocol "%T"`).
func ParseProtocols(out []byte) ([]Protocol, error) {
	var ps []Protocol
	header := false
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if !header {
			header = len(f) >= 5 && f[0] == "Name" && f[1] == "Proto" && f[3] == "State"
			continue
		}
		if len(f) < 5 {
			return nil, fmt.Errorf("bird: show protocols: short line %q", line)
		}
		ps = append(ps, Protocol{Name: f[0], Proto: f[1], Table: f[2], State: f[3], Since: f[4], Info: strings.Join(f[5:], " ")})
	}
	if !header {
		return nil, fmt.Errorf("bird: show protocols: no header in %q", strings.TrimSpace(string(out)))
	}
	return ps, nil
}

// Route is one path of `show route all`.
type Route struct {
	Prefix   string   // e.g. "172.31.0.0/16"
	Type     string   // unicast, blackhole, unreachable, ...
	Protocol string   // the protocol that supplied it, e.g. "tun1"
	Primary  bool     // the best path for the prefix ("*")
	Pref     int      // preference
	Summary  string   // the bracket at the end of the first line, e.g. "AS64512i"
	NextHop  string   // "via ADDR on IFACE": ADDR
	Iface    string   // "via ADDR on IFACE": IFACE
	ASPath   []uint32 // BGP.as_path
	Attrs    map[string]string
	Original []string // the lines of this path as printed
}

var (
	// "172.31.0.0/16        unicast [tun1 12:00:03] * (100) [AS64512i]"; the
	// prefix is blank on a second path of the same prefix.
	routeLineRE = regexp.MustCompile(`^(\S+)?\s+(\w+) \[(\S+)(?: [^\]]*)?\]( \*)? \((\d+)(?:/[^)]*)?\)(?: \[([^\]]*)\])?`)
	viaRE       = regexp.MustCompile(`^\s+via (\S+) on (\S+)`)
	devRE       = regexp.MustCompile(`^\s+dev (\S+)`)
)

// ParseRoutes parses the output of `birdc show route [PREFIX] all`.
func ParseRoutes(out []byte) ([]Route, error) {
	var rs []Route
	prefix := ""
	for _, line := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "BIRD ") || strings.HasPrefix(line, "Table ") {
			continue
		}
		if m := routeLineRE.FindStringSubmatch(line); m != nil && (m[1] != "" || prefix != "") && !strings.HasPrefix(line, "\t") {
			if m[1] != "" {
				prefix = m[1]
			}
			pref, _ := strconv.Atoi(m[5])
			rs = append(rs, Route{Prefix: prefix, Type: m[2], Protocol: m[3], Primary: m[4] != "", Pref: pref, Summary: m[6],
				Attrs: map[string]string{}, Original: []string{line}})
			continue
		}
		if len(rs) == 0 {
			if strings.Contains(line, "Network not found") {
				return nil, nil
			}
			return nil, fmt.Errorf("bird: show route: unexpected line %q", line)
		}
		r := &rs[len(rs)-1]
		r.Original = append(r.Original, line)
		if m := viaRE.FindStringSubmatch(line); m != nil {
			r.NextHop, r.Iface = m[1], m[2]
			continue
		}
		if m := devRE.FindStringSubmatch(line); m != nil {
			r.Iface = m[1]
			continue
		}
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		r.Attrs[k] = v
		if k == "BGP.as_path" {
			for _, f := range strings.Fields(v) {
				n, err := strconv.ParseUint(strings.Trim(f, "{}"), 10, 32)
				if err != nil {
					return nil, fmt.Errorf("bird: show route: as_path %q: %v", v, err)
				}
				r.ASPath = append(r.ASPath, uint32(n))
			}
		}
	}
	return rs, nil
}

// FormatRoutes renders rs one path per line (for test logs).
func FormatRoutes(rs []Route) string {
	var b strings.Builder
	for _, r := range rs {
		star := " "
		if r.Primary {
			star = "*"
		}
		fmt.Fprintf(&b, "  %-18s %s %-9s %s [%s] via %s on %s as_path %v\n", r.Prefix, star, r.Type, r.Protocol, r.Summary, r.NextHop, r.Iface, r.ASPath)
	}
	return b.String()
}
