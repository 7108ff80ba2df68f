// Package ikeflood sends IKEv1 main mode first messages (MM1) in bulk, for
// the scenario "a responder flooded with first messages keeps serving".
//
// Each message is well formed, built with the repository's ISAKMP encoder
// (ike/isakmp): a random initiator cookie, a zero responder cookie, message
// ID 0 and one SA payload with one ordinary proposal (AES-CBC-256,
// SHA2-256, pre-shared key, MODP2048, 28800 s). The flood never answers the
// responder, so every message a responder accepts leaves a half-open
// ISAKMP SA behind until the responder gives up on it.
//
// A responder creates half-open state only for first messages from an
// address it has a tunnel for; from any other address ours answers
// NO-PROPOSAL-CHOSEN (counted as unknown_peer) and keeps nothing. So a flood
// that is to reach the half-open bound must come from a configured peer's
// address (any source port).
package ikeflood

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"net"
	"time"

	"github.com/vpnlab/vpnlab/ike/isakmp"
)

// The proposal every flood message carries.
const (
	EncKeyBits = 256
	Lifetime   = 28800 * time.Second
	dhGroup    = 14 // MODP2048
)

// FirstMessage returns an encoded main mode first message with the given
// initiator cookie (which must not be zero).
func FirstMessage(icookie [8]byte) ([]byte, error) {
	if icookie == ([8]byte{}) {
		return nil, errors.New("ikeflood: the initiator cookie must not be zero")
	}
	m := &isakmp.Message{
		Header:   isakmp.Header{ICookie: icookie, Version: isakmp.Version, Exchange: isakmp.ExchangeIdentityProtection},
		Payloads: []isakmp.Payload{proposal()},
	}
	return m.Encode()
}

// proposal is the SA payload: one ISAKMP proposal with one KEY_IKE
// transform.
func proposal() *isakmp.SA {
	return &isakmp.SA{DOI: isakmp.DOIIPsec, Situation: isakmp.SituationIdentityOnly, Proposals: []isakmp.Proposal{{
		Number: 1, ProtocolID: isakmp.ProtoISAKMP,
		Transforms: []isakmp.Transform{{Number: 1, ID: isakmp.TransformKeyIKE, Attributes: []isakmp.Attribute{
			isakmp.AttrBasic(isakmp.AttrEncryptionAlgorithm, isakmp.EncAESCBC),
			isakmp.AttrBasic(isakmp.AttrKeyLength, EncKeyBits),
			isakmp.AttrBasic(isakmp.AttrHashAlgorithm, isakmp.HashSHA2256),
			isakmp.AttrBasic(isakmp.AttrAuthenticationMethod, isakmp.AuthPSK),
			isakmp.AttrBasic(isakmp.AttrGroupDescription, dhGroup),
			isakmp.AttrBasic(isakmp.AttrLifeType, isakmp.LifeSeconds),
			isakmp.AttrUint(isakmp.AttrLifeDuration, uint64(Lifetime/time.Second)),
		}}},
	}}}
}

// randomCookie returns a non-zero random initiator cookie.
func randomCookie() ([8]byte, error) {
	var c [8]byte
	for c == ([8]byte{}) {
		if _, err := rand.Read(c[:]); err != nil {
			return c, err
		}
	}
	return c, nil
}

// Flood sends n first messages, each with a fresh random initiator cookie,
// from conn to dst, at most rate per second (0: as fast as the socket
// takes them). It returns how many it sent; it stops early with ctx's error
// when ctx ends, or with the first send error. Nothing is read from conn.
func Flood(ctx context.Context, conn net.PacketConn, dst net.Addr, n int, rate float64) (sent int, err error) {
	switch {
	case conn == nil || dst == nil:
		return 0, errors.New("ikeflood: a connection and a destination are required")
	case n < 0:
		return 0, fmt.Errorf("ikeflood: count %d is negative", n)
	case rate < 0 || math.IsNaN(rate) || math.IsInf(rate, 0):
		return 0, fmt.Errorf("ikeflood: rate %v: want messages per second >= 0 (0: unlimited)", rate)
	}
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(time.Second) / rate)
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	next := time.Now()
	for sent < n {
		if err := ctx.Err(); err != nil {
			return sent, err
		}
		if interval > 0 {
			if wait := time.Until(next); wait > 0 {
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				select {
				case <-ctx.Done():
					return sent, ctx.Err()
				case <-timer.C:
				}
			}
			// Pace from the later of the schedule and now: a sender that
			// fell behind does not catch up in a burst above the rate.
			if now := time.Now(); now.After(next) {
				next = now
			}
			next = next.Add(interval)
		}
		c, err := randomCookie()
		if err != nil {
			return sent, fmt.Errorf("ikeflood: random cookie: %w", err)
		}
		b, err := FirstMessage(c)
		if err != nil {
			return sent, err
		}
		if _, err := conn.WriteTo(b, dst); err != nil {
			return sent, fmt.Errorf("ikeflood: sending message %d to %s: %w", sent+1, dst, err)
		}
		sent++
	}
	return sent, nil
}
