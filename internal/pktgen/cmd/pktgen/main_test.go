package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"
)

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage:"},
		{[]string{"blast"}, 2, `unknown subcommand "blast"`},
		{[]string{"send", "-bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"send", "-dst", "127.0.0.1:9", "-count", "10"}, 2, "duration must be > 0"},
		{[]string{"send", "-dst", "127.0.0.1:9", "-duration", "1s"}, 2, "count must be > 0"},
		{[]string{"send", "-dst", "127.0.0.1:9", "-count", "1", "-duration", "1s", "-size", "8"}, 2, "size 8 out of range"},
		{[]string{"send", "-dst", "127.0.0.1:9", "-count", "1", "-duration", "1s", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"recv", "-duration", "1s"}, 2, "-listen is required"},
		{[]string{"recv", "-listen", "127.0.0.1:0"}, 2, "duration must be > 0"},
		{[]string{"recv", "-listen", "192.0.2.77:0", "-duration", "1s"}, 1, "cannot assign requested address"},
		{[]string{"help"}, 0, ""},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("pktgen %q: exit %d, stderr %q; want exit %d and %q", tc.args, code, errb.String(), tc.code, tc.want)
		}
	}
}

// send and recv print one JSON object each with the counts.
func TestSendRecvJSON(t *testing.T) {
	// a free port for the receiver
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	var rout, rerr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"recv", "-listen", addr, "-duration", "10s", "-idle", "300ms"}, &rout, &rerr)
	}()
	time.Sleep(200 * time.Millisecond) // the receiver binds
	var sout, serr bytes.Buffer
	if code := run(context.Background(), []string{"send", "-dst", addr, "-size", "512", "-count", "5000", "-duration", "5s", "-rate", "20000", "-streams", "2"}, &sout, &serr); code != 0 {
		t.Fatalf("send exit %d: %s", code, serr.String())
	}
	if code := <-done; code != 0 {
		t.Fatalf("recv exit %d: %s", code, rerr.String())
	}
	var s struct {
		Packets, Bytes uint64
		Streams        int
		Stopped        string
	}
	var r struct {
		Packets, Bytes, Lost uint64
		Streams              int
		Stopped              string
	}
	if err := json.Unmarshal(sout.Bytes(), &s); err != nil {
		t.Fatalf("send output %q: %v", sout.String(), err)
	}
	if err := json.Unmarshal(rout.Bytes(), &r); err != nil {
		t.Fatalf("recv output %q: %v", rout.String(), err)
	}
	if s.Packets != 5000 || s.Bytes != 5000*512 || s.Streams != 2 || s.Stopped != "count" {
		t.Errorf("send JSON %s", sout.String())
	}
	if r.Packets != 5000 || r.Bytes != 5000*512 || r.Streams != 2 || r.Lost != 0 || r.Stopped != "idle" {
		t.Errorf("recv JSON %s", rout.String())
	}
}

// SIGTERM (a cancelled context) still prints the receiver's counts.
func TestRecvCancelled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var out, errb bytes.Buffer
	start := time.Now()
	code := run(ctx, []string{"recv", "-listen", "127.0.0.1:0", "-duration", "1m"}, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), `"stopped":"nothing received"`) || time.Since(start) > 3*time.Second {
		t.Fatalf("exit %d after %v, stdout %q stderr %q", code, time.Since(start), out.String(), errb.String())
	}
}
