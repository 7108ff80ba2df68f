package ike

import (
	"bytes"
	"net/netip"

	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/keymat"
)

// The NAT-D task (RFC 3947 section 3.2): in main mode messages 3 and 4 (and
// aggressive mode 2 and 3) each side sends HASH(CKY-I | CKY-R | IP | Port)
// first of the destination it sends to, then of its own source. A mismatch on
// receipt tells which side is behind a NAT; then IKE floats to port 4500 and
// ESP is UDP-encapsulated.

func (sa *ikeSA) natdHash(ap netip.AddrPort) []byte {
	return keymat.NATDHash(sa.hash, sa.iCookie[:], sa.rCookie[:], ap)
}

// addNATD appends the NAT-D payloads if NAT-T was negotiated. With
// ForceEncap the hash of our own address is random, so that both sides
// believe we are behind NAT (strongSwan's encap=yes does the same).
func (sa *ikeSA) addNATD(ps []isakmp.Payload) []isakmp.Payload {
	if sa.nattVersion == nattNone {
		return ps
	}
	draft := sa.nattVersion == nattDraft
	local := sa.natdHash(sa.local)
	if sa.t != nil && sa.t.cfg.ForceEncap {
		local = randomBytes(len(local))
	}
	return append(ps,
		&isakmp.NATD{Hash: sa.natdHash(sa.remote), Draft: draft},
		&isakmp.NATD{Hash: local, Draft: draft})
}

// processNATD compares the peer's NAT-D payloads with what we see.
func (sa *ikeSA) processNATD(ps []isakmp.Payload) {
	if sa.nattVersion == nattNone {
		return
	}
	var hashes [][]byte
	for _, p := range ps {
		if n, ok := p.(*isakmp.NATD); ok {
			hashes = append(hashes, n.Hash)
		}
	}
	if len(hashes) < 2 {
		sa.logger().Info("peer announced NAT-T but sent no NAT-D payloads; NAT traversal off")
		sa.nattVersion = nattNone
		return
	}
	sa.localBehindNAT = !bytes.Equal(hashes[0], sa.natdHash(sa.local))
	remoteSeen := sa.natdHash(sa.remote)
	sa.remoteBehindNAT = true
	for _, h := range hashes[1:] {
		if bytes.Equal(h, remoteSeen) {
			sa.remoteBehindNAT = false
		}
	}
	if sa.t != nil && sa.t.cfg.ForceEncap {
		sa.localBehindNAT = true
	}
	f := sa.logger().WithField("local_behind_nat", sa.localBehindNAT).WithField("remote_behind_nat", sa.remoteBehindNAT)
	if sa.natDetected() {
		f.Info("NAT detected: IKE moves to UDP 4500 and ESP is UDP-encapsulated")
		sa.e.emit(Event{Tunnel: sa.tunnelName(), Type: "nat-detected", Detail: map[string]string{
			"local_behind_nat": boolStr(sa.localBehindNAT), "remote_behind_nat": boolStr(sa.remoteBehindNAT)}})
	} else {
		f.Debug("no NAT between the peers")
	}
}

func (sa *ikeSA) natDetected() bool {
	return sa.nattVersion != nattNone && (sa.localBehindNAT || sa.remoteBehindNAT)
}

// float moves the SA to the NAT-T port (RFC 3947 section 4): the initiator
// switches in main mode message 5 (aggressive mode message 3).
func (sa *ikeSA) float() {
	if sa.floated {
		return
	}
	sa.floated = true
	sa.local = netip.AddrPortFrom(sa.local.Addr(), sa.e.cfg.Ports.NATT)
	port := sa.e.cfg.Ports.NATT
	if sa.t != nil {
		port = sa.t.cfg.RemotePorts.NATT
	}
	sa.remote = netip.AddrPortFrom(sa.remote.Addr(), port)
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
