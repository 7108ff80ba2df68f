package sock

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

var (
	addrA = netip.MustParseAddrPort("192.0.2.1:500")
	addrB = netip.MustParseAddrPort("192.0.2.2:500")
)

func open(t *testing.T, b Binder, ap netip.AddrPort) Conn {
	t.Helper()
	c, err := b.Open(ap)
	if err != nil {
		t.Fatalf("Open(%v): %v", ap, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readWithin reads one datagram or fails after d.
func readWithin(t *testing.T, c Conn, d time.Duration) ([]byte, netip.AddrPort) {
	t.Helper()
	type res struct {
		b    []byte
		from netip.AddrPort
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		buf := make([]byte, 2048)
		n, from, err := c.ReadFrom(buf)
		ch <- res{buf[:n], from, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("ReadFrom: %v", r.err)
		}
		return r.b, r.from
	case <-time.After(d):
		t.Fatal("no datagram")
	}
	return nil, netip.AddrPort{}
}

func TestNetworkDeliversByAddress(t *testing.T) {
	n := NewNetwork()
	a, b := open(t, n, addrA), open(t, n, addrB)
	other := open(t, n, netip.AddrPortFrom(addrB.Addr(), 4500))
	msg := []byte("hello")
	if err := a.WriteTo(msg, addrB); err != nil {
		t.Fatal(err)
	}
	msg[0] = 'X' // the network keeps its own copy
	got, from := readWithin(t, b, time.Second)
	if string(got) != "hello" || from != addrA {
		t.Fatalf("got %q from %v, want \"hello\" from %v", got, from, addrA)
	}
	if err := b.WriteTo([]byte("back"), addrA); err != nil {
		t.Fatal(err)
	}
	if got, from := readWithin(t, a, time.Second); string(got) != "back" || from != addrB {
		t.Fatalf("got %q from %v", got, from)
	}
	if len(other.(*memConn).in) != 0 {
		t.Fatal("a datagram reached the other port of the address")
	}
	if a.LocalAddr() != addrA {
		t.Fatalf("LocalAddr %v", a.LocalAddr())
	}
	if n.Dropped() != 0 {
		t.Fatalf("dropped %d", n.Dropped())
	}
}

func TestNetworkDrops(t *testing.T) {
	n := NewNetwork()
	a, b := open(t, n, addrA), open(t, n, addrB)
	if err := a.WriteTo([]byte("x"), netip.MustParseAddrPort("192.0.2.9:500")); err != nil {
		t.Fatalf("a datagram to nobody is lost, not an error: %v", err)
	}
	if n.Dropped() != 1 {
		t.Fatalf("dropped %d, want 1 (unbound address)", n.Dropped())
	}
	n.SetFilter(func(from, to netip.AddrPort, p []byte) bool { return p[0] != 'd' })
	_ = a.WriteTo([]byte("drop me"), addrB)
	_ = a.WriteTo([]byte("keep"), addrB)
	if got, _ := readWithin(t, b, time.Second); string(got) != "keep" {
		t.Fatalf("got %q, want the filter to drop the first datagram", got)
	}
	n.SetFilter(nil)
	for range memQueue + 5 {
		_ = a.WriteTo([]byte("fill"), addrB)
	}
	if n.Dropped() != 2+5 {
		t.Fatalf("dropped %d, want 7 (1 unbound, 1 filtered, 5 over the queue)", n.Dropped())
	}
}

func TestNetworkBindAndClose(t *testing.T) {
	n := NewNetwork()
	a := open(t, n, addrA)
	if _, err := n.Open(addrA); !errors.Is(err, ErrAddrInUse) {
		t.Fatalf("second Open of %v: %v, want ErrAddrInUse", addrA, err)
	}
	if _, err := n.Open(netip.AddrPortFrom(addrA.Addr(), 0)); err == nil {
		t.Fatal("Open with port 0 succeeded")
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := a.ReadFrom(make([]byte, 10))
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	a.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ReadFrom after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Close did not unblock ReadFrom")
	}
	if err := a.WriteTo([]byte("x"), addrB); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteTo after Close: %v", err)
	}
	again := open(t, n, addrA) // the address is free again
	b := open(t, n, addrB)
	_ = b.WriteTo([]byte("new"), addrA)
	if got, _ := readWithin(t, again, time.Second); string(got) != "new" {
		t.Fatalf("got %q", got)
	}
}

// TestUDPRoundTrip: the kernel implementation on loopback, and the kernel
// socket it exposes for the NAT-T data path.
func TestUDPRoundTrip(t *testing.T) {
	var u UDP
	a := open(t, u, netip.MustParseAddrPort("127.0.0.1:0"))
	kc, ok := a.(KernelConn)
	if !ok || kc.Kernel() == nil {
		t.Fatal("a UDP Conn is not a KernelConn")
	}
	aAddr := a.LocalAddr()
	b := open(t, u, netip.MustParseAddrPort("127.0.0.1:0"))
	bAddr := b.LocalAddr()
	if err := a.WriteTo([]byte("ping"), bAddr); err != nil {
		t.Fatal(err)
	}
	got, from := readWithin(t, b, 2*time.Second)
	if aAddr.Port() == 0 || string(got) != "ping" || from != aAddr {
		t.Fatalf("got %q from %v, want \"ping\" from %v", got, from, aAddr)
	}
	if !from.Addr().Is4() {
		t.Fatalf("source %v is not unmapped IPv4", from)
	}
	a.Close()
	if _, _, err := a.ReadFrom(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadFrom after Close: %v, want net.ErrClosed", err)
	}
}
