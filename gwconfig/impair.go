package gwconfig

import (
	"fmt"
	"sort"
	"strings"

	"github.com/vpnlab/vpnlab/ike/impair"
)

// impairItem is one parsed entry of the top-level impair list.
type impairItem struct {
	it  item
	idx int
	imp impair.Spec
}

// impair reads the top-level impair list: protocol impairments for tests
// (impair.Parse specs, e.g. drop:main:3 or tunnel1/no-delete). Each
// entry is checked by the parser; the tunnel names once the tunnels are
// known (impairTunnels).
func (d *decoder) impair(top *object) []impairItem {
	items, _ := top.list("impair")
	var out []impairItem
	for i, it := range items {
		imp, err := impair.Parse(it.s)
		if err != nil {
			d.errf(it.n, fmt.Sprintf("impair[%d]", i), "%v", err)
			continue
		}
		out = append(out, impairItem{it, i, imp})
	}
	return out
}

// impairTunnels checks the tunnel prefixes against the configured tunnels
// and hands the impairments to the engine configuration.
func (d *decoder) impairTunnels(c *Config, items []impairItem) {
	if len(items) == 0 {
		return
	}
	names := map[string]bool{}
	var list []string
	for _, t := range c.IKE.Tunnels {
		names[t.Name] = true
		list = append(list, t.Name)
	}
	sort.Strings(list)
	var specs []string
	for _, x := range items {
		if x.imp.Tunnel != "" && !names[x.imp.Tunnel] {
			d.errf(x.it.n, fmt.Sprintf("impair[%d]", x.idx), "%q: no tunnel is named %q (tunnels: %s)", x.it.s, x.imp.Tunnel, strings.Join(list, ", "))
			continue
		}
		c.IKE.Impairments = addImpairment(c.IKE.Impairments, x.imp)
	}
	for _, imp := range c.IKE.Impairments {
		specs = append(specs, imp.String())
	}
	if len(specs) > 0 {
		d.warnf(items[0].it.n, "impair", "protocol impairments are active (%s): this gateway misbehaves on purpose, for tests only", strings.Join(specs, ", "))
	}
}

// addImpairment adds imp to list as the engine would: "none" removes the
// entries before it (those of its tunnel when it has one), a repeated entry
// is kept once.
func addImpairment(list []impair.Spec, imp impair.Spec) []impair.Spec {
	if imp.Verb == impair.None {
		var kept []impair.Spec
		for _, x := range list {
			if imp.Tunnel != "" && x.Tunnel != imp.Tunnel {
				kept = append(kept, x)
			}
		}
		return kept
	}
	for _, x := range list {
		if x == imp {
			return list
		}
	}
	return append(list, imp)
}

// impairSpecs returns the configured impairments as specs.
func (c *Config) impairSpecs() []string {
	var out []string
	for _, imp := range c.IKE.Impairments {
		out = append(out, imp.String())
	}
	return out
}
