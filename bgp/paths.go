package bgp

import (
	"fmt"
	"net/netip"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/vpnlab/vpnlab/routes"
)

// ipv4Unicast is the only family the speaker carries.
var ipv4Unicast = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}

// localPath builds the path we originate for prefix: origin IGP, next hop
// unspecified (GoBGP puts the session's local address there for eBGP).
func localPath(prefix netip.Prefix) (*api.Path, error) {
	nlri := bgp.NewIPAddrPrefix(uint8(prefix.Bits()), prefix.Masked().Addr().String())
	attrs := []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP),
		bgp.NewPathAttributeNextHop("0.0.0.0"),
	}
	return apiutil.NewPath(nlri, false, attrs, time.Now())
}

// learnedPath converts a path received from a neighbor. ok is false for
// paths that are not IPv4 unicast routes (End-of-RIB markers, other
// families).
func learnedPath(p *api.Path, tunnel string, at time.Time) (path routes.Path, ok bool, err error) {
	if p.GetNlri() == nil || p.GetFamily().GetAfi() != api.Family_AFI_IP || p.GetFamily().GetSafi() != api.Family_SAFI_UNICAST {
		return routes.Path{}, false, nil
	}
	nlri, err := apiutil.GetNativeNlri(p)
	if err != nil {
		return routes.Path{}, false, fmt.Errorf("decoding NLRI: %w", err)
	}
	prefix, err := netip.ParsePrefix(nlri.String())
	if err != nil {
		return routes.Path{}, false, fmt.Errorf("NLRI %q: %w", nlri.String(), err)
	}
	path = routes.Path{Prefix: prefix, Tunnel: tunnel, Source: routes.BGP, Learned: at}
	if p.IsWithdraw {
		return path, true, nil
	}
	attrs, err := apiutil.GetNativePathAttributes(p)
	if err != nil {
		return routes.Path{}, false, fmt.Errorf("%v: decoding attributes: %w", prefix, err)
	}
	for _, a := range attrs {
		switch a := a.(type) {
		case *bgp.PathAttributeAsPath:
			path.ASPath = flattenASPath(a)
		case *bgp.PathAttributeMultiExitDisc:
			path.MED, path.HasMED = a.Value, true
		}
	}
	return path, true, nil
}

// flattenASPath lists the AS numbers of AS_SEQUENCE segments in order; an
// AS_SET counts one (RFC 4271 9.1.2.2 a), so it contributes its first member.
// Confederation segments do not count, as in RFC 5065.
func flattenASPath(a *bgp.PathAttributeAsPath) []uint32 {
	var out []uint32
	for _, seg := range a.Value {
		asns := seg.GetAS()
		switch seg.GetType() {
		case bgp.BGP_ASPATH_ATTR_TYPE_SEQ:
			out = append(out, asns...)
		case bgp.BGP_ASPATH_ATTR_TYPE_SET:
			if len(asns) > 0 {
				out = append(out, asns[0])
			}
		}
	}
	return out
}
