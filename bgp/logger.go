package bgp

import (
	"fmt"
	"strings"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/sirupsen/logrus"
)

// logAdapter gives GoBGP a pkg/log Logger that writes to our logrus logger.
//
// GoBGP is chatty at Info (every configuration step, every policy change), so
// its Info becomes our Debug and its Debug our Trace, except the messages about
// a peer's session going up or down, which stay at Info. Its Panic and Fatal
// (code-logic bugs) are logged at Error and then panic: a library must not
// exit the gateway process.
type logAdapter struct {
	log logrus.FieldLogger
	// tunnelOf names the tunnel of a neighbor address ("" if unknown).
	tunnelOf func(addr string) string
}

func (l *logAdapter) entry(fields gobgplog.Fields) *logrus.Entry {
	f := make(logrus.Fields, len(fields)+2)
	for k, v := range fields {
		f[strings.ToLower(k)] = v
	}
	if key, ok := fields["Key"].(string); ok && l.tunnelOf != nil {
		if t := l.tunnelOf(key); t != "" {
			f["tunnel"] = t
		}
	}
	f["component"] = "gobgp"
	return l.log.WithFields(f)
}

// sessionMessage reports whether a GoBGP Info message is about a session
// going up or down.
func sessionMessage(msg string, fields gobgplog.Fields) bool {
	if fields["Topic"] != "Peer" {
		return false
	}
	switch msg {
	case "Peer Up", "Peer Down":
		return true
	}
	return strings.HasPrefix(msg, "Administrative shutdown")
}

func (l *logAdapter) Panic(msg string, fields gobgplog.Fields) {
	l.entry(fields).Error(msg)
	panic(fmt.Sprintf("gobgp: %s", msg))
}

func (l *logAdapter) Fatal(msg string, fields gobgplog.Fields) {
	l.entry(fields).Error(msg)
	panic(fmt.Sprintf("gobgp: %s", msg))
}

func (l *logAdapter) Error(msg string, fields gobgplog.Fields) { l.entry(fields).Error(msg) }
func (l *logAdapter) Warn(msg string, fields gobgplog.Fields) {
	if msg == listenerTTLWarning {
		// GoBGP sets TTL 255 on its listener only for neighbors with TTL
		// security (GTSM, RFC 5082), which no tunnel configures (AWS does
		// not use it); the setsockopt fails on some listeners. Harmless.
		l.entry(fields).WithField("why", "no neighbor uses TTL security (GTSM); harmless").Debug(msg)
		return
	}
	l.entry(fields).Warn(msg)
}

// listenerTTLWarning is GoBGP's warning when its listener's TTL cannot be
// set to 255.
const listenerTTLWarning = "cannot set TTL (255) for TCPListener"

func (l *logAdapter) Info(msg string, fields gobgplog.Fields) {
	if sessionMessage(msg, fields) {
		l.entry(fields).Info(msg)
		return
	}
	l.entry(fields).Debug(msg)
}

func (l *logAdapter) Debug(msg string, fields gobgplog.Fields) { l.entry(fields).Trace(msg) }

// SetLevel is ignored: the gateway owns the level of its logger.
func (l *logAdapter) SetLevel(gobgplog.LogLevel) {}

// GetLevel tells GoBGP whether its Debug output (our Trace) is wanted, which
// it checks before building expensive debug messages.
func (l *logAdapter) GetLevel() gobgplog.LogLevel {
	var level logrus.Level
	switch lg := l.log.(type) {
	case *logrus.Logger:
		level = lg.GetLevel()
	case *logrus.Entry:
		level = lg.Logger.GetLevel()
	default:
		return gobgplog.InfoLevel
	}
	if level >= logrus.TraceLevel {
		return gobgplog.DebugLevel
	}
	return gobgplog.InfoLevel
}
