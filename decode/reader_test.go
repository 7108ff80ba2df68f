package decode

import (
	"bytes"
	"os"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// readFrames returns the frames of a testdata capture.
func readFrames(t *testing.T, path string) []Frame {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	src, _, err := openCapture(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var out []Frame
	for {
		f, err := src.next()
		if err != nil {
			return out
		}
		out = append(out, f)
	}
}

// rewrap turns Ethernet frames into another link type: raw IP, Linux
// cooked v1 (16-byte header, protocol at 14) or v2 (20 bytes, protocol
// first), written as pcapng.
func rewrap(t *testing.T, frames []Frame, link layers.LinkType, mutate func([]Frame) []Frame) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriter(&buf, link)
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		frames = mutate(frames)
	}
	for _, f := range frames {
		if len(f.Data) < 14 {
			continue
		}
		et, ip := f.Data[12:14], f.Data[14:]
		var data []byte
		switch link {
		case layers.LinkTypeRaw:
			data = ip
		case layers.LinkTypeLinuxSLL:
			h := make([]byte, 16)
			copy(h[14:], et)
			data = append(h, ip...)
		case linkLinuxSLL2:
			h := make([]byte, 20)
			copy(h[0:], et)
			data = append(h, ip...)
		default:
			data = f.Data
		}
		ci := gopacket.CaptureInfo{Timestamp: f.Time, CaptureLength: len(data), Length: len(data)}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func decodeBytes(t *testing.T, b []byte, keyFile string) *Report {
	t.Helper()
	keys := NewKeys()
	if err := keys.LoadKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	rep, err := Decode(bytes.NewReader(b), "synthetic", keys)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// The same traffic in pcapng with raw IP and Linux cooked v1/v2 link
// layers decodes exactly as the Ethernet pcap.
func TestLinkTypesAndPCAPNG(t *testing.T) {
	frames := readFrames(t, "testdata/scenarios/nat-t.pcap")
	b, _ := os.ReadFile("testdata/scenarios/nat-t.pcap")
	want := decodeBytes(t, b, "testdata/scenarios/nat-t.keys.log")
	for _, link := range []layers.LinkType{layers.LinkTypeEthernet, layers.LinkTypeRaw, layers.LinkTypeLinuxSLL, linkLinuxSLL2} {
		rep := decodeBytes(t, rewrap(t, frames, link, nil), "testdata/scenarios/nat-t.keys.log")
		if rep.Format != "pcapng" || len(rep.IKE) != len(want.IKE) || len(rep.ESP) != len(want.ESP) || rep.ExitCode() != 0 {
			t.Errorf("link %d: format %s, %d/%d IKE SAs, %d/%d ESP SAs, exit %d %v", link, rep.Format, len(rep.IKE), len(want.IKE), len(rep.ESP), len(want.ESP), rep.ExitCode(), rep.Problems)
			continue
		}
		for i := range rep.ESP {
			if rep.ESP[i].Decrypted != want.ESP[i].Decrypted || rep.ESP[i].Decrypted == 0 {
				t.Errorf("link %d ESP %s: %d decrypted, want %d", link, rep.ESP[i].SPI, rep.ESP[i].Decrypted, want.ESP[i].Decrypted)
			}
		}
	}
}

// A replayed ESP packet and a lost one are counted per SA; a damaged
// packet (ICV) is a failure, not a crash.
func TestESPSequenceGapsReplaysAndDamage(t *testing.T) {
	frames := readFrames(t, "testdata/scenarios/basic.pcap")
	// ESP frames by sequence number (Ethernet 14 + IPv4 20 + SPI 4).
	seqAt := func(f Frame) int {
		if len(f.Data) < 42 || f.Data[23] != protoESP {
			return -1
		}
		return int(f.Data[38])<<24 | int(f.Data[39])<<16 | int(f.Data[40])<<8 | int(f.Data[41])
	}
	first := func(seq int) int {
		for i, f := range frames {
			if seqAt(f) == seq {
				return i
			}
		}
		t.Fatalf("no ESP frame with sequence number %d", seq)
		return -1
	}
	lost, damaged, replayed := first(3), first(5), first(2)
	mutate := func(fs []Frame) []Frame {
		var out []Frame
		for i, f := range fs {
			switch i {
			case lost:
				continue
			case damaged: // flip a ciphertext byte: the ICV fails
				d := append([]byte(nil), f.Data...)
				d[len(d)-20] ^= 0xff
				f.Data = d
			}
			out = append(out, f)
		}
		return append(out, fs[replayed]) // replayed at the end
	}
	rep := decodeBytes(t, rewrap(t, frames, layers.LinkTypeEthernet, mutate), "testdata/scenarios/basic.keys.log")
	var gaps, replays, failed int
	for _, e := range rep.ESP {
		gaps += e.Gaps
		replays += e.Replays
		failed += e.Failed
	}
	if gaps != 1 || replays != 1 || failed != 1 || rep.ExitCode() != 1 {
		t.Errorf("gaps %d replays %d failed %d exit %d, want 1 1 1 1", gaps, replays, failed, rep.ExitCode())
	}
}
