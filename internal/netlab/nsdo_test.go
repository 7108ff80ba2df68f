package netlab

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// hasInterface reports whether the current thread's namespace has an
// interface called name.
func hasInterface(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// A socket bound inside a lab namespace sees that namespace's addresses,
// stays there after Do returns and is usable from other goroutines; the
// caller (and every other thread) stays in the original namespace.
func TestDo(t *testing.T) {
	l, err := New(t)
	if err != nil {
		t.Fatal(err)
	}
	a, err := l.AddNS("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.AddNS("b")
	if err != nil {
		t.Fatal(err)
	}
	aAddr, bAddr := netip.MustParseAddr("10.98.0.2"), netip.MustParseAddr("10.98.0.1")
	if err := l.Link(a, "nsdo0", netip.PrefixFrom(aAddr, 24), b, "nsdo1", netip.PrefixFrom(bAddr, 24)); err != nil {
		t.Fatal(err)
	}
	if hasInterface("nsdo0") {
		t.Fatal("nsdo0 visible in the test's namespace before Do")
	}

	// Binding a's address only works inside a.
	if c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(aAddr, 0))); err == nil {
		c.Close()
		t.Fatalf("bound %s outside the lab namespace", aAddr)
	}
	var rx *net.UDPConn
	err = a.Do(func() error {
		if !hasInterface("nsdo0") || hasInterface("nsdo1") {
			return errors.New("inside a: wrong interfaces")
		}
		var err error
		rx, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(aAddr, 0)))
		return err
	})
	if err != nil {
		t.Fatalf("a.Do: %v", err)
	}
	defer rx.Close()
	var tx *net.UDPConn
	if err := Do(b.Name(), func() error {
		var err error
		tx, err = net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
		return err
	}); err != nil {
		t.Fatalf("Do(b): %v", err)
	}
	defer tx.Close()
	if got := tx.LocalAddr().(*net.UDPAddr).AddrPort().Addr(); got != bAddr {
		t.Fatalf("b's socket has source %v, want %v (routed in b)", got, bAddr)
	}

	// Use both sockets from other goroutines.
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 64)
		rx.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := rx.ReadFromUDPAddrPort(buf)
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- from.Addr().String() + " " + string(buf[:n])
	}()
	go func() { tx.Write([]byte("hello")) }()
	if s := <-got; s != bAddr.String()+" hello" {
		t.Fatalf("received %q, want %q", s, bAddr.String()+" hello")
	}

	// Many concurrent Do calls never leave a thread of the process in a
	// lab namespace: everything outside Do still sees the original one.
	var wg sync.WaitGroup
	var leaks, fails sync.Map
	for i := range 200 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := a.Do(func() error {
				if !hasInterface("nsdo0") {
					return errors.New("not in a")
				}
				return nil
			}); err != nil {
				fails.Store(i, err)
			}
		}()
		go func() {
			defer wg.Done()
			if hasInterface("nsdo0") || hasInterface("nsdo1") {
				leaks.Store(i, true)
			}
		}()
	}
	wg.Wait()
	fails.Range(func(k, v any) bool { t.Errorf("Do #%v: %v", k, v); return false })
	leaks.Range(func(k, v any) bool { t.Errorf("goroutine #%v ran in a lab namespace", k); return false })
	if hasInterface("nsdo0") {
		t.Fatal("nsdo0 visible in the test's namespace after Do")
	}

	// fn's error is returned as is; "" is the current namespace.
	sentinel := errors.New("sentinel")
	if err := a.Do(func() error { return sentinel }); err != sentinel {
		t.Fatalf("error not passed through: %v", err)
	}
	if err := Do("", func() error {
		if hasInterface("nsdo0") {
			return errors.New(`Do("") ran in the lab namespace`)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// A panic in fn reaches the caller.
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Fatalf("recovered %v, want boom", r)
			}
		}()
		a.Do(func() error { panic("boom") })
		t.Fatal("Do returned after a panic")
	}()
}

func TestDoBadNamespace(t *testing.T) {
	ran := false
	fn := func() error { ran = true; return nil }
	if err := Do("vl-no-such-namespace", fn); err == nil {
		t.Fatal("Do on a missing namespace: no error")
	}
	if err := Do("../etc", fn); err == nil {
		t.Fatal("Do with a path-like name: no error")
	}
	if ran {
		t.Fatal("fn ran although the namespace could not be entered")
	}
}
