package pcapfile

import (
	"bytes"
	"net/netip"
	"path/filepath"
	"testing"
)

func TestWriteRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.pcap")
	src, dst := netip.MustParseAddrPort("198.51.100.2:500"), netip.MustParseAddrPort("203.0.113.10:4500")
	in := [][]byte{[]byte("one"), bytes.Repeat([]byte{7}, 3000)}
	if err := WriteUDP(path, src, dst, in); err != nil {
		t.Fatal(err)
	}
	ds, err := ReadUDP(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 {
		t.Fatalf("%d datagrams", len(ds))
	}
	for i, d := range ds {
		if d.Src != src || d.Dst != dst || !bytes.Equal(d.Payload, in[i]) || d.Frame != i+1 {
			t.Errorf("datagram %d: %v -> %v frame %d, %d bytes", i, d.Src, d.Dst, d.Frame, len(d.Payload))
		}
	}
}

func TestReassemble(t *testing.T) {
	whole := []byte("0123456789abcdefXYZ")
	got, ok := reassemble([]fragment{{off: 16, data: whole[16:]}, {off: 0, more: true, data: whole[:8]}, {off: 8, more: true, data: whole[8:16]}})
	if !ok || !bytes.Equal(got, whole) {
		t.Fatalf("reassemble = %q %v", got, ok)
	}
	if _, ok := reassemble([]fragment{{off: 0, more: true, data: whole[:8]}, {off: 16, data: whole[16:]}}); ok {
		t.Fatal("a gap was reassembled")
	}
}
