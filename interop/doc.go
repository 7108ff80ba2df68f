// Package interop tests our gateways (cmd/vgw, cmd/cgw) against strongSwan.
//
// Every test builds its own network namespaces (internal/netlab), runs a
// strongSwan charon with kernel-libipsec in one of them (internal/strongswan)
// and one of our gateway binaries in the other, and checks with
// `swanctl --list-sas` (and our control API) that IKEv1 main mode + quick
// mode with a pre-shared key come up. The tests need root and strongSwan and
// skip otherwise. The package has no non-test code; see interop_test.go and
// docs/interop.md.
package interop
