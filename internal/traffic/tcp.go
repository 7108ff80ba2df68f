package traffic

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/vpnlab/vpnlab/internal/netlab"
)

const (
	dialTimeout    = time.Second            // one connect attempt
	redialDelay    = 100 * time.Millisecond // between failed attempts
	maxServerConns = 16                     // accepted connections kept open; the oldest is closed beyond
)

type tcpTransport struct {
	f   *Flow
	ln  *net.TCPListener // in DstNS
	pkt []byte

	mu       sync.Mutex
	conn     *net.TCPConn // client connection in use (nil: none)
	closed   bool
	srvConns []*net.TCPConn
	broken   chan struct{} // capacity 1: the client connection broke

	readyOnce sync.Once
}

func (f *Flow) startTCP() error {
	t := &tcpTransport{f: f, pkt: make([]byte, f.spec.Size), broken: make(chan struct{}, 1)}
	err := f.bindPort(func(port uint16) error {
		var ln *net.TCPListener
		err := netlab.Do(f.spec.DstNS, func() (err error) {
			ln, err = net.ListenTCP(network("tcp", f.spec.Dst), net.TCPAddrFromAddrPort(netip.AddrPortFrom(f.spec.Dst, port)))
			return err
		})
		if err != nil {
			if ln != nil {
				ln.Close()
			}
			return err
		}
		t.ln = ln
		return nil
	})
	if err != nil {
		return err
	}
	f.tx = t
	f.wg.Add(2)
	go t.acceptLoop()
	go t.connectLoop()
	return nil
}

// dial makes one connection attempt from SrcNS.
func (t *tcpTransport) dial() (*net.TCPConn, error) {
	s := t.f.spec
	var c net.Conn
	err := netlab.Do(s.SrcNS, func() error {
		d := net.Dialer{Timeout: dialTimeout}
		if s.Src.IsValid() {
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(s.Src, 0))
		}
		var err error
		c, err = d.DialContext(t.f.sendCtx, network("tcp", s.Dst), netip.AddrPortFrom(s.Dst, s.Port).String())
		return err
	})
	if err != nil {
		if c != nil {
			c.Close()
		}
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// connectLoop keeps a client connection up while the flow sends: it
// connects, waits until the connection breaks, and connects again. The end
// of the first attempt (successful or not) releases the send loop.
func (t *tcpTransport) connectLoop() {
	defer t.f.wg.Done()
	defer t.releaseReady()
	stop := t.f.sendCtx.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	connected := false
	for {
		c, err := t.dial()
		if err != nil {
			if t.f.sendCtx.Err() != nil {
				return
			}
			t.f.tr.note(err)
			t.releaseReady()
			timer.Reset(redialDelay)
			select {
			case <-timer.C:
			case <-stop:
				return
			}
			continue
		}
		t.mu.Lock()
		if t.closed || t.f.sendCtx.Err() != nil {
			t.mu.Unlock()
			c.Close()
			return
		}
		t.conn = c
		t.mu.Unlock()
		t.f.setSrc(c.LocalAddr().(*net.TCPAddr).AddrPort().Addr())
		if connected {
			t.f.tr.reconnected()
		}
		connected = true
		t.releaseReady()
		select {
		case <-t.broken:
		case <-stop:
			return
		}
	}
}

func (t *tcpTransport) releaseReady() { t.readyOnce.Do(func() { close(t.f.ready) }) }

func (t *tcpTransport) send(seq uint64, ts int64) error {
	t.mu.Lock()
	c := t.conn
	t.mu.Unlock()
	if c == nil {
		return errNotConnected
	}
	putHeader(t.pkt, t.f.id, seq, ts)
	if _, err := c.Write(t.pkt); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) && t.f.sendCtx.Err() != nil {
			return err // interrupted by Stop: the connection is closed by close
		}
		t.mu.Lock()
		if t.conn == c {
			t.conn = nil
		}
		t.mu.Unlock()
		c.Close()
		select {
		case t.broken <- struct{}{}:
		default:
		}
		return err
	}
	return nil
}

func (t *tcpTransport) acceptLoop() {
	defer t.f.wg.Done()
	var errs int
	for {
		c, err := t.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			pause(&errs)
			continue
		}
		errs = 0
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			c.Close()
			return
		}
		if len(t.srvConns) >= maxServerConns {
			t.srvConns[0].Close() // its reader ends
			t.srvConns = append(t.srvConns[:0], t.srvConns[1:]...)
		}
		t.srvConns = append(t.srvConns, c)
		t.f.wg.Add(1)
		t.mu.Unlock()
		go t.readLoop(c)
	}
}

// readLoop parses the message stream of one accepted connection.
func (t *tcpTransport) readLoop(c *net.TCPConn) {
	defer t.f.wg.Done()
	defer t.dropServerConn(c)
	br := bufio.NewReaderSize(c, 64<<10)
	msg := make([]byte, t.f.spec.Size)
	for {
		if _, err := io.ReadFull(br, msg); err != nil {
			return // closed, reset, or a partial message at the end
		}
		seq, ts, ok := parseHeader(msg, t.f.id)
		if !ok {
			return // not this flow's stream (or framing lost)
		}
		t.f.tr.recv(seq, ts, len(msg), time.Now())
	}
}

func (t *tcpTransport) dropServerConn(c *net.TCPConn) {
	c.Close()
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, x := range t.srvConns {
		if x == c {
			t.srvConns = append(t.srvConns[:i], t.srvConns[i+1:]...)
			break
		}
	}
}

// resetServerConns aborts the accepted connections (RST): tests use it to
// break the client's connection.
func (t *tcpTransport) resetServerConns() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.srvConns {
		_ = c.SetLinger(0)
		c.Close()
	}
}

func (t *tcpTransport) interrupt() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conn != nil {
		_ = t.conn.SetWriteDeadline(time.Now())
	}
}

func (t *tcpTransport) close() {
	t.mu.Lock()
	t.closed = true
	conn, srv := t.conn, t.srvConns
	t.conn, t.srvConns = nil, nil
	t.mu.Unlock()
	if t.ln != nil {
		t.ln.Close()
	}
	if conn != nil {
		conn.Close()
	}
	for _, c := range srv {
		c.Close()
	}
}
