package wanem

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The bit rate is the kernel's job: for every direction with RateBits the
// forwarder installs, on the link the direction leaves by, an htb class of
// that rate (rate = ceil) with a pfifo of RateQueue's worth of packets, and
// a u32 filter that sends the direction's packets (outer source and
// destination) to it. The forwarder's frames pass the link's qdisc like any
// other, so htb paces them; a frame the full pfifo refuses comes back from
// sendmmsg as ENOBUFS and is counted as dropped_rate. Unclassified traffic
// (htb default 0) leaves unshaped. Packets per second have no kernel
// qdisc, so RatePackets stays in the forwarder's own shaper (shape).

const (
	htbRoot     = 0x00010000 // 1:
	htbFirstCls = 0x10
)

// kernelRates replaces the htb setup of both links for the snapshot's
// directions (removing it where no direction needs one).
func (f *Forwarder) kernelRates(s *snapshot) error {
	var errs []error
	for _, l := range []*link{f.a, f.b} {
		var dirs []*direction
		for _, d := range s.all {
			if d.out == l && d.im.RateBits > 0 {
				dirs = append(dirs, d)
			}
		}
		if err := f.htb(l, dirs); err != nil {
			errs = append(errs, fmt.Errorf("wanem: rate on %s: %w", l.name, err))
		}
	}
	return errors.Join(errs...)
}

// htb installs (or, without dirs, removes) the link's root htb.
func (f *Forwarder) htb(l *link, dirs []*direction) error {
	root := netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: l.ifindex, Handle: htbRoot, Parent: netlink.HANDLE_ROOT})
	if l.htb {
		if err := f.nl.QdiscDel(root); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("removing the htb: %w", err)
		}
		l.htb = false
	}
	if len(dirs) == 0 {
		return nil
	}
	if err := f.nl.QdiscReplace(root); err != nil {
		return fmt.Errorf("htb root: %w", err)
	}
	l.htb = true
	for i, d := range dirs {
		minor := uint16(htbFirstCls + i)
		// htb only classifies (its class allows twice the rate); the tbf
		// below it shapes, with a queue of RateQueue at the rate.
		cls := netlink.NewHtbClass(netlink.ClassAttrs{LinkIndex: l.ifindex, Parent: htbRoot, Handle: netlink.MakeHandle(1, minor)},
			netlink.HtbClassAttrs{Rate: 2 * d.im.RateBits, Ceil: 2 * d.im.RateBits})
		if err := f.nl.ClassAdd(cls); err != nil {
			return fmt.Errorf("htb class for %s: %w", d.name, err)
		}
		bytesPerSec := d.im.RateBits / 8
		// Burst: 1 ms at the rate (at least two full frames), so that the
		// token bucket's time fits the kernel's clock at any rate.
		burst := uint32(max(3100, bytesPerSec/1000))
		limit := max(burst, uint32(float64(bytesPerSec)*d.im.RateQueue.Seconds()))
		tbf := &netlink.Tbf{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: l.ifindex, Parent: netlink.MakeHandle(1, minor), Handle: netlink.MakeHandle(minor, 0)},
			Rate: bytesPerSec, Limit: limit, Buffer: netlink.Xmittime(bytesPerSec, burst)}
		if err := f.nl.QdiscAdd(tbf); err != nil {
			return fmt.Errorf("tbf for %s: %w", d.name, err)
		}
		src, dst := d.src.As4(), d.dst.As4()
		flt := &netlink.U32{
			FilterAttrs: netlink.FilterAttrs{LinkIndex: l.ifindex, Parent: htbRoot, Priority: 1, Protocol: unix.ETH_P_IP},
			ClassId:     netlink.MakeHandle(1, minor),
			Sel: &netlink.TcU32Sel{Flags: netlink.TC_U32_TERMINAL, Keys: []netlink.TcU32Key{
				{Mask: 0xffffffff, Val: binary.BigEndian.Uint32(src[:]), Off: 12},
				{Mask: 0xffffffff, Val: binary.BigEndian.Uint32(dst[:]), Off: 16},
			}},
		}
		if err := f.nl.FilterAdd(flt); err != nil {
			return fmt.Errorf("u32 filter for %s: %w", d.name, err)
		}
	}
	return nil
}
