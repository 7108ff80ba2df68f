package scenarios

import (
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vpnlab/vpnlab/gwconfig"
)

// checkIKEVersions checks the ike_versions of a mapping of tunnel fields
// (a gateway's tunnel_options, a connection tunnel's customer_options or
// aws_options, an entry of a gateway's config.tunnels) at the scenario's
// own line: a non-empty list of ikev1/ikev2 without repeats. The gateway's
// parser checks it again in the generated configuration (gwconfig), with
// every rule that depends on other fields (startup_action start on the AWS
// side needs ikev2, AES-GCM in phase 1 needs ikev2).
func checkIKEVersions(what string, n *yaml.Node, el *errList) {
	if n == nil || n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != "ike_versions" {
			continue
		}
		v := n.Content[i+1]
		var items []*yaml.Node
		switch v.Kind {
		case yaml.ScalarNode:
			if v.Tag != "!!null" {
				items = []*yaml.Node{v}
			}
		case yaml.SequenceNode:
			items = v.Content
		default:
			el.add(v.Line, "%s.ike_versions: expected a list of IKE versions (ikev1, ikev2)", what)
			continue
		}
		if len(items) == 0 {
			el.add(v.Line, "%s.ike_versions: must not be empty (allowed: ikev1, ikev2)", what)
		}
		seen := map[string]bool{}
		for _, it := range items {
			for _, s := range strings.Split(it.Value, ",") {
				s = strings.TrimSpace(s)
				ver, ok := gwconfig.ParseIKEVersion(s)
				switch {
				case it.Kind != yaml.ScalarNode || !ok:
					el.add(it.Line, "%s.ike_versions: %q is not an IKE version (allowed: ikev1, ikev2)", what, s)
				case seen[ver.String()]:
					el.add(it.Line, "%s.ike_versions: %s is listed twice", what, s)
				default:
					seen[ver.String()] = true
				}
			}
		}
	}
}

// checkConfigIKEVersions checks the ike_versions of every entry of a
// gateway configuration's tunnels list.
func checkConfigIKEVersions(what string, config *yaml.Node, el *errList) {
	if config == nil || config.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(config.Content); i += 2 {
		if config.Content[i].Value != "tunnels" || config.Content[i+1].Kind != yaml.SequenceNode {
			continue
		}
		for _, t := range config.Content[i+1].Content {
			checkIKEVersions(what+".tunnels[]", t, el)
		}
	}
}
