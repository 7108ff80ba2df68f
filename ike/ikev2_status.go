package ike

import "encoding/hex"

// status fills the tunnel's status from its current IKEv2 SA: the version,
// role, SPIs (in the ICookie/RCookie fields), proposal, expiry and NAT
// findings.
func (sa *ikev2SA) status(st *TunnelStatus) {
	st.IKEVersion = "ikev2"
	st.Role = sa.role()
	st.Exchange = "IKE_SA_INIT"
	if sa.state == v2AuthSent || sa.state == v2Established {
		st.Exchange = "IKE_AUTH"
	}
	st.ICookie, st.RCookie = hex.EncodeToString(sa.spiI[:]), hex.EncodeToString(sa.spiR[:])
	if sa.state == v2Established {
		st.Proposal = sa.proposal.String()
		st.Phase1Expires = sa.expires
	}
	st.NATDetected = sa.natDetected()
	st.LocalBehindNAT, st.RemoteBehindNAT, st.Floated = sa.localBehindNAT, sa.remoteBehindNAT, sa.floated
}
