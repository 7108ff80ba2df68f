package pktgen

import (
	"bufio"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// socketDrops reads the kernel's drop counter of c (sk_drops: datagrams
// dropped because the receive buffer was full, and the like) from the "drops"
// column of /proc/net/udp or /proc/net/udp6, found by the socket's inode. It
// sees every drop until now, unlike SO_RXQ_OVFL, which only tells the count as
// it was when the datagram being read was queued.
func socketDrops(c *net.UDPConn) (uint64, bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var st unix.Stat_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Fstat(int(fd), &st) }); err != nil || serr != nil {
		return 0, false
	}
	ino := strconv.FormatUint(st.Ino, 10)
	for _, file := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		if d, ok := dropsOfInode(file, ino); ok {
			return d, true
		}
	}
	return 0, false
}

// dropsOfInode finds the line of inode in a /proc/net/udp-style table
// (columns: sl local rem st queues timer retrnsmt uid timeout inode ref
// pointer drops) and returns its drops.
func dropsOfInode(file, ino string) (uint64, bool) {
	f, err := os.Open(file)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 13 || fs[9] != ino {
			continue
		}
		d, err := strconv.ParseUint(fs[12], 10, 64)
		return d, err == nil
	}
	return 0, false
}
