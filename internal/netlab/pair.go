package netlab

import (
	"net/netip"
	"testing"
)

// NewPair is the smallest lab of the peer tests: namespaces cgw
// (10.99.0.2/24) and vgw (10.99.0.1/24) joined by a veth whose ends are
// both named wan0. It fails the test on an error.
func NewPair(tb testing.TB) (lab *Lab, cgw, vgw *NS) {
	tb.Helper()
	lab, err := New(tb)
	if err == nil {
		cgw, err = lab.AddNS("cgw")
	}
	if err == nil {
		vgw, err = lab.AddNS("vgw")
	}
	if err == nil {
		err = lab.Link(cgw, "wan0", netip.MustParsePrefix("10.99.0.2/24"), vgw, "wan0", netip.MustParsePrefix("10.99.0.1/24"))
	}
	if err != nil {
		tb.Fatal(err)
	}
	return lab, cgw, vgw
}
