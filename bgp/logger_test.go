package bgp

import (
	"bytes"
	"strings"
	"testing"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/sirupsen/logrus"
)

func TestLogAdapter(t *testing.T) {
	var buf bytes.Buffer
	l := logrus.New()
	l.SetOutput(&buf)
	l.SetFormatter(&logrus.TextFormatter{DisableTimestamp: true})
	l.SetLevel(logrus.InfoLevel)
	a := &logAdapter{log: l, tunnelOf: func(addr string) string {
		if addr == "169.254.10.2" {
			return "tunnel1"
		}
		return ""
	}}

	a.Info("Add a peer configuration", gobgplog.Fields{"Topic": "Peer", "Key": "169.254.10.2"}) // chatty: Debug
	a.Debug("try to connect", gobgplog.Fields{"Topic": "Peer"})                                 // Trace
	a.Info("Peer Up", gobgplog.Fields{"Topic": "Peer", "Key": "169.254.10.2"})                  // stays Info
	a.Warn("prefix limit reached", gobgplog.Fields{"Topic": "Peer"})
	a.Warn("cannot set TTL (255) for TCPListener", gobgplog.Fields{"Topic": "Peer", "Err": "operation not supported"}) // no GTSM: Debug
	out := buf.String()
	if strings.Contains(out, "cannot set TTL") {
		t.Errorf("the listener TTL warning (no TTL security configured) logged at warning:\n%s", out)
	}
	if strings.Contains(out, "Add a peer configuration") || strings.Contains(out, "try to connect") {
		t.Errorf("chatty GoBGP messages logged at info:\n%s", out)
	}
	if !strings.Contains(out, `level=info msg="Peer Up" component=gobgp key=169.254.10.2 topic=Peer tunnel=tunnel1`) {
		t.Errorf("peer state change missing or without tunnel:\n%s", out)
	}
	if !strings.Contains(out, `level=warning msg="prefix limit reached"`) {
		t.Errorf("warning missing:\n%s", out)
	}
	if a.GetLevel() != gobgplog.InfoLevel {
		t.Errorf("GetLevel at info = %v", a.GetLevel())
	}
	l.SetLevel(logrus.TraceLevel)
	if a.GetLevel() != gobgplog.DebugLevel {
		t.Errorf("GetLevel at trace = %v", a.GetLevel())
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Fatal did not panic")
			}
		}()
		a.Fatal("code logic bug", nil)
	}()
}
