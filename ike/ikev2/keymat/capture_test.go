package keymat_test

import (
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/vpnlab/vpnlab/internal/netlab"
)

// udpCapture records the UDP payloads to and from port 500 on one
// interface of a namespace (IKE_SA_INIT travels there, unencrypted).
type udpCapture struct {
	h    *pcapgo.EthernetHandle
	mu   sync.Mutex
	msgs []capturedIKE
	done chan struct{}
}

type capturedIKE struct {
	Src, Dst string // addr:port
	Data     []byte // the UDP payload: the whole IKE message
}

func startCapture(ns *netlab.NS, ifName string) (*udpCapture, error) {
	c := &udpCapture{done: make(chan struct{})}
	if err := ns.Do(func() error {
		var err error
		c.h, err = pcapgo.NewEthernetHandle(ifName)
		return err
	}); err != nil {
		return nil, fmt.Errorf("capture on %s: %v", ifName, err)
	}
	go func() {
		defer close(c.done)
		for {
			data, _, err := c.h.ReadPacketData()
			if err != nil {
				return
			}
			p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
			ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
			if ip == nil || udp == nil || (udp.SrcPort != 500 && udp.DstPort != 500) {
				continue
			}
			c.mu.Lock()
			c.msgs = append(c.msgs, capturedIKE{
				Src:  fmt.Sprintf("%s:%d", ip.SrcIP, udp.SrcPort),
				Dst:  fmt.Sprintf("%s:%d", ip.DstIP, udp.DstPort),
				Data: append([]byte(nil), udp.Payload...),
			})
			c.mu.Unlock()
		}
	}()
	return c, nil
}

func (c *udpCapture) stop() []capturedIKE {
	c.h.Close()
	select {
	case <-c.done:
	case <-time.After(2 * time.Second):
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.msgs
}

// ikeSAInit is one IKE_SA_INIT request and its response.
type ikeSAInit struct {
	Req, Resp         []byte
	SPIi, SPIr        []byte
	Ni, Nr            []byte
	ReqNATD, RespNATD map[uint16][]byte // notify type -> data
}

// findIKESAInit returns the IKE_SA_INIT exchange (exchange type 34) whose
// response carries responder SPI spir.
func findIKESAInit(msgs []capturedIKE, spii, spir []byte) (*ikeSAInit, error) {
	x := &ikeSAInit{SPIi: spii, SPIr: spir}
	for _, m := range msgs {
		d := m.Data
		if len(d) < 28 || d[18] != 34 || string(d[0:8]) != string(spii) {
			continue
		}
		nonce, notifies, err := ikePayloads(d)
		if err != nil {
			return nil, fmt.Errorf("%s -> %s: %v", m.Src, m.Dst, err)
		}
		if d[19]&0x20 == 0 { // request
			x.Req, x.Ni, x.ReqNATD = d, nonce, notifies
		} else if string(d[8:16]) == string(spir) {
			x.Resp, x.Nr, x.RespNATD = d, nonce, notifies
		}
	}
	if x.Req == nil || x.Resp == nil || x.Ni == nil || x.Nr == nil {
		return nil, fmt.Errorf("IKE_SA_INIT of SPIs %x/%x not captured completely (%d messages on port 500)", spii, spir, len(msgs))
	}
	return x, nil
}

// ikePayloads walks an unencrypted IKEv2 message's payload chain (RFC 7296
// sections 3.1 and 3.2) and returns the Nonce payload's data (type 40) and
// the NAT detection notifications' data (type 41, 16388/16389).
func ikePayloads(d []byte) ([]byte, map[uint16][]byte, error) {
	if l := binary.BigEndian.Uint32(d[24:28]); int(l) != len(d) {
		return nil, nil, fmt.Errorf("IKE length %d, datagram %d", l, len(d))
	}
	var nonce []byte
	notifies := map[uint16][]byte{}
	next, off := d[16], 28
	for next != 0 {
		if off+4 > len(d) {
			return nil, nil, fmt.Errorf("payload %d at %d: truncated header", next, off)
		}
		l := int(binary.BigEndian.Uint16(d[off+2 : off+4]))
		if l < 4 || off+l > len(d) {
			return nil, nil, fmt.Errorf("payload %d at %d: length %d", next, off, l)
		}
		body := d[off+4 : off+l]
		switch next {
		case 40:
			nonce = body
		case 41:
			if len(body) >= 4 && body[1] == 0 {
				notifies[binary.BigEndian.Uint16(body[2:4])] = body[4:]
			}
		}
		next, off = d[off], off+l
	}
	return nonce, notifies, nil
}
