package strongswan

import (
	"regexp"
	"strings"
)

// The raw vici output of list-conns is not quoted ("class=pre-shared key"
// has a blank in a value), so it is not parsed as sections: the connection
// name opens the line and every CHILD_SA section starts with its mode.
var (
	connNameRE  = regexp.MustCompile(`^list-conn event \{([^ {}]+) \{`)
	childNameRE = regexp.MustCompile(`(?:children \{|\} ?)([^ {}=]+) \{mode=`)
)

// ParseListConns parses the output of `swanctl --list-conns --raw`: one
// line per loaded connection, `list-conn event {NAME {... children {CHILD
// {mode=... } ...}}}`. It returns the CHILD_SA configuration names of each
// connection, in the order charon lists them.
func ParseListConns(out []byte) map[string][]string {
	conns := map[string][]string{}
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		m := connNameRE.FindStringSubmatch(line)
		if m == nil {
			continue // e.g. "list-conns reply {}"
		}
		names := []string{}
		if i := strings.Index(line, " children {"); i >= 0 {
			for _, c := range childNameRE.FindAllStringSubmatch(line[i:], -1) {
				names = append(names, c[1])
			}
		}
		conns[m[1]] = names
	}
	return conns
}
