package ike

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// Phase 2 lifetimes (RFC 2407 section 4.5 SA Life Type/Duration, section
// 4.6.3.1 RESPONDER-LIFETIME). Whatever the peer proposes or answers, an
// installed pair gets the minimum of our configured lifetime and the
// peer's, and the peer's counts only if it is above zero: a zero is
// ignored (logged), and a value too large for a time.Duration is taken as
// "longer than ours" instead of wrapping around.

// maxLifeSeconds is the largest number of seconds a time.Duration holds.
const maxLifeSeconds = uint64(math.MaxInt64 / int64(time.Second))

// secondsDuration converts a lifetime attribute in seconds without
// overflow (values past ~292 years saturate).
func secondsDuration(v uint64) time.Duration {
	if v > maxLifeSeconds {
		return time.Duration(maxLifeSeconds) * time.Second
	}
	return time.Duration(v) * time.Second
}

// minLifetime returns the shorter of ours and theirs; theirs counts only if
// above zero.
func minLifetime(ours, theirs time.Duration) time.Duration {
	if theirs > 0 && theirs < ours {
		return theirs
	}
	return ours
}

// minLifeKB is minLifetime for kilobyte lifetimes, where 0 means no limit.
func minLifeKB(ours, theirs uint64) uint64 {
	if theirs > 0 && (ours == 0 || theirs < ours) {
		return theirs
	}
	return ours
}

// responderLifetime (responder) sets the quick mode's lifetimes from ours
// and the proposal's, and returns a RESPONDER-LIFETIME notify when the
// initiator proposed longer ones than we accept.
func (qm *quickMode) responderLifetime(o phase2Offer) []isakmp.Payload {
	pol := &qm.sa.t.cfg.Phase2
	qm.life, qm.lifeKB = minLifetime(pol.Lifetime, o.life), minLifeKB(pol.LifetimeKB, o.lifeKB)
	if o.life <= qm.life && (qm.lifeKB == 0 || o.lifeKB <= qm.lifeKB) {
		return nil
	}
	qm.logger().WithFields(logrus.Fields{"proposed": o.life.String(), "configured": qm.life.String()}).Info("peer proposed a longer lifetime: answering with RESPONDER-LIFETIME")
	attrs := []isakmp.Attribute{isakmp.AttrBasic(isakmp.AttrSALifeType, isakmp.LifeSeconds), isakmp.AttrUint(isakmp.AttrSALifeDuration, uint64(qm.life/time.Second))}
	if qm.lifeKB > 0 {
		attrs = append(attrs, isakmp.AttrBasic(isakmp.AttrSALifeType, isakmp.LifeKilobytes), isakmp.AttrUint(isakmp.AttrSALifeDuration, qm.lifeKB))
	}
	return []isakmp.Payload{&isakmp.Notify{DOI: isakmp.DOIIPsec, ProtocolID: o.p.Protocol, SPI: spiBytes(o.spi),
		NotifyType: isakmp.NotifyResponderLifetime, Data: encodeAttributes(attrs)}}
}

// applyResponderLifetime (initiator) adopts the responder's lifetimes from
// a RESPONDER-LIFETIME notify (RFC 2407 4.6.3.1) where they are shorter
// than ours and above zero. A zero or malformed value is ignored and
// logged; the pair then keeps our lifetime.
func (qm *quickMode) applyResponderLifetime(data []byte) {
	attrs, err := decodeAttributes(data)
	if err != nil {
		qm.logger().WithError(err).Warn("malformed RESPONDER-LIFETIME notify ignored")
		return
	}
	lt := uint16(0)
	for _, a := range attrs {
		v, err := a.Uint()
		if err != nil {
			qm.logger().WithError(err).Warn("RESPONDER-LIFETIME attribute does not fit 64 bits: ignored")
			continue
		}
		switch {
		case a.Type == isakmp.AttrSALifeType:
			lt = uint16(v)
		case a.Type != isakmp.AttrSALifeDuration:
		case v == 0:
			qm.logger().WithField("life_type", lt).Warn("RESPONDER-LIFETIME of zero ignored: keeping our lifetime")
		case lt == isakmp.LifeSeconds:
			qm.life = minLifetime(qm.life, secondsDuration(v))
		case lt == isakmp.LifeKilobytes:
			qm.lifeKB = minLifeKB(qm.lifeKB, v)
		}
	}
	qm.logger().WithFields(logrus.Fields{"lifetime": qm.life.String(), "lifetime_kb": qm.lifeKB}).Info("responder lifetime adopted")
}

// encodeAttributes/decodeAttributes handle the attribute list carried in a
// RESPONDER-LIFETIME notify's data (RFC 2407 4.6.3.1).
func encodeAttributes(attrs []isakmp.Attribute) []byte {
	var out []byte
	for _, a := range attrs {
		if a.Basic {
			out = binary.BigEndian.AppendUint16(out, a.Type|0x8000)
			out = binary.BigEndian.AppendUint16(out, a.Value)
			continue
		}
		out = binary.BigEndian.AppendUint16(out, a.Type)
		out = binary.BigEndian.AppendUint16(out, uint16(len(a.Data)))
		out = append(out, a.Data...)
	}
	return out
}

func decodeAttributes(b []byte) ([]isakmp.Attribute, error) {
	var out []isakmp.Attribute
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("attribute truncated")
		}
		t := binary.BigEndian.Uint16(b)
		v := binary.BigEndian.Uint16(b[2:])
		if t&0x8000 != 0 {
			out = append(out, isakmp.Attribute{Type: t &^ 0x8000, Basic: true, Value: v})
			b = b[4:]
			continue
		}
		if len(b) < 4+int(v) {
			return nil, fmt.Errorf("attribute length %d past end", v)
		}
		out = append(out, isakmp.Attribute{Type: t, Data: append([]byte(nil), b[4:4+int(v)]...)})
		b = b[4+int(v):]
	}
	return out, nil
}
