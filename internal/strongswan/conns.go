package strongswan

import (
	"fmt"
	"strings"
)

// ParseListConns parses the output of `swanctl --list-conns --raw`: one
// line per loaded connection, `list-conn event {NAME {... children {CHILD
// {...} ...}}}`. It returns the CHILD_SA configuration names of each
// connection, in the order charon lists them.
func ParseListConns(out []byte) (map[string][]string, error) {
	conns := map[string][]string{}
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		const prefix = "list-conn event "
		if !strings.HasPrefix(line, prefix) {
			continue // e.g. "list-conns reply {}"
		}
		root, err := parseSection(line[len(prefix):])
		if err != nil {
			return nil, fmt.Errorf("strongswan: parsing list-conns line %q: %v", line, err)
		}
		for _, c := range root.subs {
			names := []string{}
			if ch := c.n.sub("children"); ch != nil {
				for _, s := range ch.subs {
					names = append(names, s.name)
				}
			}
			conns[c.name] = names
		}
	}
	return conns, nil
}
