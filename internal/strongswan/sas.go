package strongswan

import (
	"fmt"
	"strconv"
	"strings"
)

// IKESA is one IKE_SA as reported by `swanctl --list-sas --raw`.
type IKESA struct {
	Name         string // connection name
	UniqueID     int
	Version      int
	State        string // CONNECTING, ESTABLISHED, ...
	LocalHost    string
	LocalPort    int
	LocalID      string
	RemoteHost   string
	RemotePort   int
	RemoteID     string
	Initiator    bool
	InitiatorSPI string
	ResponderSPI string
	NATRemote    bool // remote side behind NAT (or faked: NATFake)
	NATFake      bool // charon fakes NAT-D (kernel-libipsec requires UDP encapsulation)
	EncrAlg      string
	EncrKeySize  int
	IntegAlg     string
	PRFAlg       string
	DHGroup      string
	Children     []ChildSA
	Raw          map[string]string // every scalar key of the IKE_SA
}

// ChildSA is one CHILD_SA of an IKESA.
type ChildSA struct {
	Name        string // child config name
	UniqueID    int
	ReqID       int
	State       string // INSTALLED, REKEYED, ...
	Mode        string // TUNNEL
	Protocol    string // ESP
	Encap       bool   // ESP-in-UDP
	SPIIn       string
	SPIOut      string
	EncrAlg     string
	EncrKeySize int
	IntegAlg    string
	DHGroup     string // PFS group ("" without PFS)
	BytesIn     uint64
	BytesOut    uint64
	PacketsIn   uint64
	PacketsOut  uint64
	LocalTS     []string
	RemoteTS    []string
	Raw         map[string]string
}

// Proposal is the chosen IKE proposal in swanctl's notation, e.g.
// "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048".
func (s IKESA) Proposal() string {
	return joinAlg(s.EncrAlg, s.EncrKeySize, s.IntegAlg, s.PRFAlg, s.DHGroup)
}

// Proposal is the chosen ESP proposal, e.g.
// "AES_CBC-128/HMAC_SHA2_256_128/MODP_2048".
func (c ChildSA) Proposal() string {
	return joinAlg(c.EncrAlg, c.EncrKeySize, c.IntegAlg, "", c.DHGroup)
}

func joinAlg(encr string, ks int, integ, prf, dh string) string {
	var p []string
	if encr != "" {
		if ks > 0 {
			encr += "-" + strconv.Itoa(ks)
		}
		p = append(p, encr)
	}
	for _, a := range []string{integ, prf, dh} {
		if a != "" {
			p = append(p, a)
		}
	}
	return strings.Join(p, "/")
}

// Summary renders SAs in one short line each (for test logs).
func Summary(sas []IKESA) string {
	if len(sas) == 0 {
		return "no IKE_SAs"
	}
	var b strings.Builder
	for _, s := range sas {
		fmt.Fprintf(&b, "\n  %s #%d %s %s %s:%d-%s:%d", s.Name, s.UniqueID, s.State, s.Proposal(), s.LocalHost, s.LocalPort, s.RemoteHost, s.RemotePort)
		for _, c := range s.Children {
			fmt.Fprintf(&b, "\n    %s %s %s spi in %s out %s %v === %v", c.Name, c.State, c.Proposal(), c.SPIIn, c.SPIOut, c.LocalTS, c.RemoteTS)
		}
	}
	return b.String()
}

// node is a parsed vici message section.
type node struct {
	kv    map[string]string
	lists map[string][]string
	subs  []named
}

type named struct {
	name string
	n    *node
}

func (n *node) sub(name string) *node {
	for _, s := range n.subs {
		if s.name == name {
			return s.n
		}
	}
	return nil
}

// ParseListSAs parses the output of `swanctl --list-sas --raw`: one line per
// IKE_SA, `list-sa event {NAME {key=value ... list=[a b] child-sas {ID {...}}}}`.
func ParseListSAs(out []byte) ([]IKESA, error) {
	var sas []IKESA
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		const prefix = "list-sa event "
		if !strings.HasPrefix(line, prefix) {
			continue // e.g. "list-sas reply {}"
		}
		root, err := parseSection(line[len(prefix):])
		if err != nil {
			return nil, fmt.Errorf("strongswan: parsing list-sas line %q: %v", line, err)
		}
		for _, ike := range root.subs {
			sas = append(sas, ikeFrom(ike.name, ike.n))
		}
	}
	return sas, nil
}

func ikeFrom(name string, n *node) IKESA {
	s := IKESA{
		Name:         name,
		UniqueID:     atoi(n.kv["uniqueid"]),
		Version:      atoi(n.kv["version"]),
		State:        n.kv["state"],
		LocalHost:    n.kv["local-host"],
		LocalPort:    atoi(n.kv["local-port"]),
		LocalID:      n.kv["local-id"],
		RemoteHost:   n.kv["remote-host"],
		RemotePort:   atoi(n.kv["remote-port"]),
		RemoteID:     n.kv["remote-id"],
		Initiator:    n.kv["initiator"] == "yes",
		InitiatorSPI: n.kv["initiator-spi"],
		ResponderSPI: n.kv["responder-spi"],
		NATRemote:    n.kv["nat-remote"] == "yes",
		NATFake:      n.kv["nat-fake"] == "yes",
		EncrAlg:      n.kv["encr-alg"],
		EncrKeySize:  atoi(n.kv["encr-keysize"]),
		IntegAlg:     n.kv["integ-alg"],
		PRFAlg:       n.kv["prf-alg"],
		DHGroup:      n.kv["dh-group"],
		Raw:          n.kv,
	}
	if cs := n.sub("child-sas"); cs != nil {
		for _, c := range cs.subs {
			m := c.n.kv
			s.Children = append(s.Children, ChildSA{
				Name:        m["name"],
				UniqueID:    atoi(m["uniqueid"]),
				ReqID:       atoi(m["reqid"]),
				State:       m["state"],
				Mode:        m["mode"],
				Protocol:    m["protocol"],
				Encap:       m["encap"] == "yes",
				SPIIn:       m["spi-in"],
				SPIOut:      m["spi-out"],
				EncrAlg:     m["encr-alg"],
				EncrKeySize: atoi(m["encr-keysize"]),
				IntegAlg:    m["integ-alg"],
				DHGroup:     m["dh-group"],
				BytesIn:     atou(m["bytes-in"]),
				BytesOut:    atou(m["bytes-out"]),
				PacketsIn:   atou(m["packets-in"]),
				PacketsOut:  atou(m["packets-out"]),
				LocalTS:     c.n.lists["local-ts"],
				RemoteTS:    c.n.lists["remote-ts"],
				Raw:         m,
			})
		}
	}
	return s
}

func atoi(s string) int    { v, _ := strconv.Atoi(s); return v }
func atou(s string) uint64 { v, _ := strconv.ParseUint(s, 10, 64); return v }
func isDelim(c byte) bool  { return c == ' ' || c == '{' || c == '}' || c == '[' || c == ']' }
func skipSpace(s string) int {
	i := 0
	for i < len(s) && s[i] == ' ' {
		i++
	}
	return i
}

// parseSection parses "{ items }" and returns the node; the whole input must
// be consumed.
func parseSection(s string) (*node, error) {
	n, rest, err := parseBody(s)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(rest) != "" {
		return nil, fmt.Errorf("trailing input %q", rest)
	}
	return n, nil
}

// parseBody parses "{ ... }" at the start of s.
func parseBody(s string) (*node, string, error) {
	s = s[skipSpace(s):]
	if !strings.HasPrefix(s, "{") {
		return nil, s, fmt.Errorf("expected '{' at %q", trunc(s))
	}
	s = s[1:]
	n := &node{kv: map[string]string{}, lists: map[string][]string{}}
	for {
		s = s[skipSpace(s):]
		if s == "" {
			return nil, s, fmt.Errorf("unterminated section")
		}
		if s[0] == '}' {
			return n, s[1:], nil
		}
		// key: up to '=', ' ' or '{'
		i := 0
		for i < len(s) && s[i] != '=' && !isDelim(s[i]) {
			i++
		}
		key := s[:i]
		if key == "" {
			return nil, s, fmt.Errorf("expected a key at %q", trunc(s))
		}
		s = s[i:]
		switch {
		case strings.HasPrefix(s, "=["):
			s = s[2:]
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return nil, s, fmt.Errorf("unterminated list %s", key)
			}
			n.lists[key] = strings.Fields(s[:end])
			s = s[end+1:]
		case strings.HasPrefix(s, "="):
			s = s[1:]
			j := 0
			for j < len(s) && s[j] != ' ' && s[j] != '}' {
				j++
			}
			n.kv[key] = s[:j]
			s = s[j:]
		default:
			sub, rest, err := parseBody(s)
			if err != nil {
				return nil, rest, fmt.Errorf("%s: %v", key, err)
			}
			n.subs = append(n.subs, named{key, sub})
			s = rest
		}
	}
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
