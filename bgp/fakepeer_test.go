package bgp

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// fakePeer is a scripted BGP speaker written with GoBGP's packet codec only,
// so that a test needs a single GoBGP server (GoBGP's StartBgp writes package
// globals, which the race detector flags when two servers share a process).
// It lets a test put exact UPDATEs on the wire and read exactly what the
// Speaker sends back.
type fakePeer struct {
	t    *testing.T
	conn net.Conn
	asn  uint32
	addr netip.Addr

	wmu  sync.Mutex
	msgs chan *bgp.BGPMessage // everything received after the OPEN exchange
	done chan struct{}
}

// dialFake connects from local to the Speaker at remote:port and completes
// the OPEN exchange.
func dialFake(t *testing.T, local, remote netip.Addr, port int, asn uint32) *fakePeer {
	t.Helper()
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0)), Timeout: 5 * time.Second}
	var conn net.Conn
	eventually(t, sessionTimeout, "dialing the speaker", func() string {
		var err error
		conn, err = d.Dial("tcp", netip.AddrPortFrom(remote, uint16(port)).String())
		if err != nil {
			return err.Error()
		}
		return ""
	})
	f := &fakePeer{t: t, conn: conn, asn: asn, addr: local, msgs: make(chan *bgp.BGPMessage, 1024), done: make(chan struct{})}
	t.Cleanup(func() { f.conn.Close() })

	caps := []bgp.ParameterCapabilityInterface{bgp.NewCapMultiProtocol(bgp.RF_IPv4_UC), bgp.NewCapFourOctetASNumber(asn)}
	as2 := uint16(bgp.AS_TRANS)
	if asn <= 0xffff {
		as2 = uint16(asn)
	}
	f.send(bgp.NewBGPOpenMessage(as2, 9, local.String(), []bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(caps)}))
	if m := f.read(); m == nil || m.Header.Type != bgp.BGP_MSG_OPEN {
		t.Fatalf("fake peer %v: expected OPEN, got %v", local, m)
	}
	f.send(bgp.NewBGPKeepAliveMessage())
	go f.readLoop()
	go f.keepalives()
	return f
}

func (f *fakePeer) send(m *bgp.BGPMessage) {
	b, err := m.Serialize()
	if err != nil {
		f.t.Errorf("fake peer: serialize: %v", err)
		return
	}
	f.wmu.Lock()
	defer f.wmu.Unlock()
	_, _ = f.conn.Write(b) // a write to a reset session just fails
}

// read returns the next message, or nil when the connection ends.
func (f *fakePeer) read() *bgp.BGPMessage {
	hdr := make([]byte, bgp.BGP_HEADER_LENGTH)
	if _, err := io.ReadFull(f.conn, hdr); err != nil {
		return nil
	}
	n := int(binary.BigEndian.Uint16(hdr[16:18]))
	if n < bgp.BGP_HEADER_LENGTH {
		return nil
	}
	buf := append(hdr, make([]byte, n-bgp.BGP_HEADER_LENGTH)...)
	if _, err := io.ReadFull(f.conn, buf[bgp.BGP_HEADER_LENGTH:]); err != nil {
		return nil
	}
	m, err := bgp.ParseBGPMessage(buf)
	if err != nil {
		f.t.Errorf("fake peer: parse: %v", err)
		return nil
	}
	return m
}

func (f *fakePeer) readLoop() {
	defer close(f.done)
	for {
		m := f.read()
		if m == nil {
			return
		}
		f.msgs <- m
	}
}

func (f *fakePeer) keepalives() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-f.done:
			return
		case <-tick.C:
			f.send(bgp.NewBGPKeepAliveMessage())
		}
	}
}

// announce sends one UPDATE for prefixes with the given AS_PATH and, when
// med >= 0, MED.
func (f *fakePeer) announce(asPath []uint32, med int64, prefixes ...netip.Prefix) {
	attrs := []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP),
		bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, asPath)}),
		bgp.NewPathAttributeNextHop(f.addr.String()),
	}
	if med >= 0 {
		attrs = append(attrs, bgp.NewPathAttributeMultiExitDisc(uint32(med)))
	}
	f.send(bgp.NewBGPUpdateMessage(nil, attrs, nlris(prefixes)))
}

func (f *fakePeer) withdraw(prefixes ...netip.Prefix) {
	f.send(bgp.NewBGPUpdateMessage(nlris(prefixes), nil, nil))
}

func nlris(prefixes []netip.Prefix) []*bgp.IPAddrPrefix {
	out := make([]*bgp.IPAddrPrefix, len(prefixes))
	for i, p := range prefixes {
		out[i] = bgp.NewIPAddrPrefix(uint8(p.Bits()), p.Addr().String())
	}
	return out
}

// advertised is what the Speaker told the fake peer about one prefix.
type advertised struct {
	asPath []uint32
	med    uint32
	hasMED bool
}

// waitUpdate reads messages until an UPDATE announcing prefix satisfies ok.
func (f *fakePeer) waitUpdate(prefix netip.Prefix, ok func(advertised) bool) advertised {
	f.t.Helper()
	deadline := time.After(sessionTimeout)
	var last advertised
	for {
		select {
		case m := <-f.msgs:
			u, isUpdate := m.Body.(*bgp.BGPUpdate)
			if !isUpdate || !announces(u, prefix) {
				continue
			}
			last = advertised{}
			for _, a := range u.PathAttributes {
				switch a := a.(type) {
				case *bgp.PathAttributeAsPath:
					last.asPath = flattenASPath(a)
				case *bgp.PathAttributeMultiExitDisc:
					last.med, last.hasMED = a.Value, true
				}
			}
			if ok(last) {
				return last
			}
		case <-deadline:
			f.t.Fatalf("fake peer %v: no acceptable UPDATE for %v; last %+v", f.addr, prefix, last)
		}
	}
}

func announces(u *bgp.BGPUpdate, prefix netip.Prefix) bool {
	for _, n := range u.NLRI {
		if n.String() == prefix.String() {
			return true
		}
	}
	return false
}

// waitNotification reads messages until a NOTIFICATION and returns it.
func (f *fakePeer) waitNotification() *bgp.BGPNotification {
	f.t.Helper()
	deadline := time.After(sessionTimeout)
	for {
		select {
		case m := <-f.msgs:
			if n, ok := m.Body.(*bgp.BGPNotification); ok {
				return n
			}
		case <-f.done:
			for {
				select {
				case m := <-f.msgs:
					if n, ok := m.Body.(*bgp.BGPNotification); ok {
						return n
					}
				default:
					f.t.Fatalf("fake peer %v: connection closed without NOTIFICATION", f.addr)
				}
			}
		case <-deadline:
			f.t.Fatalf("fake peer %v: no NOTIFICATION", f.addr)
		}
	}
}
