// Package bgp is a gateway's BGP speaker: one eBGP session per IPsec tunnel,
// over the tunnel's inside addresses, with the learned paths deciding which
// tunnel carries each destination.
//
// The protocol is GoBGP v3's server (github.com/osrg/gobgp/v3/pkg/server),
// embedded as a library: no gRPC, no daemon. The speaker configures it
// through its API (StartBgp, AddPeer, AddPath, SetPolicies) and learns from
// it through one WatchEvent registration (peer state changes and every
// neighbor's adj-RIB-in, not only GoBGP's best path). The decision itself is
// not GoBGP's: paths go into a routes.Table, which ranks tunnels the way AWS
// does (static, AS_PATH length, MED, tunnel order; ECMP for Transit Gateway)
// and reports changes. GoBGP's own best-path choice only matters for what a
// speaker re-advertises, which is what makes a vgw with several customer
// gateways a VPN CloudHub: plain eBGP sends each site's prefixes on to the
// other sites, and refuses to send a path back to an AS already in it.
//
// Files, one mechanism each:
//
//	config.go    Config and Neighbor, defaults and validation
//	speaker.go   Speaker: construction, start and stop of GoBGP, neighbors on/off
//	restart.go   a neighbor that restarted: its stale session started over at once
//	loop.go      the goroutine that owns the table; publishing changes
//	advertise.go originated prefixes and static routes
//	watch.go     GoBGP events -> routes.Table; session state; the route limit
//	policy.go    per-neighbor MED and AS_PATH prepending (export policy)
//	paths.go     GoBGP paths <-> routes.Path
//	status.go    per-neighbor status and the route table for the status API
//	logger.go    GoBGP's logger interface on logrus
//
// One goroutine, the loop, owns the routes.Table's mutations: GoBGP's event
// callback and the static-route calls post closures to it, and after each one
// it decides, logs the changes at info and calls the OnChange subscribers in
// order. Routes and Status read snapshots and are safe from any goroutine.
//
// Route limit: GoBGP's per-neighbor PrefixLimits (RouteLimit, AWS's 100)
// sends NOTIFICATION Cease/"Maximum Number of Prefixes Reached" and drops
// the session when a neighbor goes over it, which is what reports from AWS
// VPNs describe; the speaker withdraws the neighbor's paths, records a
// routes.LimitExceeded change, and lets the session come back after
// LimitRestart (AWS does not document a hold-down; sessions reportedly
// recover and flap).
//
// Transport is kernel TCP (GoBGP cannot use another): each neighbor needs
// its own peer address, since GoBGP matches an incoming connection to a
// neighbor by its remote address only.
//
// Only IPv4 sessions carrying IPv4 unicast prefixes are supported (static
// routes may be IPv6).
//
// GoBGP v3.37.0 quirks that show here: BgpServer.Serve never returns, so a
// stopped speaker leaves one idle goroutine behind; and StartBgp writes
// package globals (route-selection options), so several speakers in one
// process are a data race inside GoBGP, harmless since all write the same
// values (the tests that need several run only without -race).
package bgp
