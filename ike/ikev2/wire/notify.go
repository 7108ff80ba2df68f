package wire

import (
	"encoding/binary"
	"fmt"
)

// NotifyType is a Notify Message Type (RFC 7296 section 3.10.1 and the IANA
// registry). Types below 16384 are errors, from 16384 on status types.
type NotifyType uint16

// Error types (section 3.10.1).
const (
	NotifyUnsupportedCriticalPayload NotifyType = 1
	NotifyInvalidIKESPI              NotifyType = 4
	NotifyInvalidMajorVersion        NotifyType = 5
	NotifyInvalidSyntax              NotifyType = 7
	NotifyInvalidMessageID           NotifyType = 9
	NotifyInvalidSPI                 NotifyType = 11
	NotifyNoProposalChosen           NotifyType = 14
	NotifyInvalidKEPayload           NotifyType = 17
	NotifyAuthenticationFailed       NotifyType = 24
	NotifySinglePairRequired         NotifyType = 34
	NotifyNoAdditionalSAs            NotifyType = 35
	NotifyInternalAddressFailure     NotifyType = 36
	NotifyFailedCPRequired           NotifyType = 37
	NotifyTSUnacceptable             NotifyType = 38
	NotifyInvalidSelectors           NotifyType = 39
	NotifyTemporaryFailure           NotifyType = 43
	NotifyChildSANotFound            NotifyType = 44
)

// Status types (section 3.10.1 and the RFCs named).
const (
	NotifyInitialContact              NotifyType = 16384
	NotifySetWindowSize               NotifyType = 16385
	NotifyAdditionalTSPossible        NotifyType = 16386
	NotifyIPCompSupported             NotifyType = 16387
	NotifyNATDetectionSourceIP        NotifyType = 16388
	NotifyNATDetectionDestinationIP   NotifyType = 16389
	NotifyCookie                      NotifyType = 16390
	NotifyUseTransportMode            NotifyType = 16391
	NotifyHTTPCertLookupSupported     NotifyType = 16392
	NotifyRekeySA                     NotifyType = 16393
	NotifyESPTFCPaddingNotSupported   NotifyType = 16394
	NotifyNonFirstFragmentsAlso       NotifyType = 16395
	NotifyMOBIKESupported             NotifyType = 16396 // RFC 4555
	NotifyAdditionalIP4Address        NotifyType = 16397 // RFC 4555
	NotifyAdditionalIP6Address        NotifyType = 16398 // RFC 4555
	NotifyNoAdditionalAddresses       NotifyType = 16399 // RFC 4555
	NotifyUpdateSAAddresses           NotifyType = 16400 // RFC 4555
	NotifyMultipleAuthSupported       NotifyType = 16404 // RFC 4739
	NotifyRedirectSupported           NotifyType = 16406 // RFC 5685
	NotifyEAPOnlyAuthentication       NotifyType = 16417 // RFC 5998
	NotifyChildlessIKEv2Supported     NotifyType = 16418 // RFC 6023
	NotifyIKEv2MessageIDSyncSupported NotifyType = 16420 // RFC 6311
	NotifyIKEv2FragmentationSupported NotifyType = 16430 // RFC 7383
	NotifySignatureHashAlgorithms     NotifyType = 16431 // RFC 7427
)

var notifyNames = map[NotifyType]string{
	NotifyUnsupportedCriticalPayload: "UNSUPPORTED_CRITICAL_PAYLOAD", NotifyInvalidIKESPI: "INVALID_IKE_SPI",
	NotifyInvalidMajorVersion: "INVALID_MAJOR_VERSION", NotifyInvalidSyntax: "INVALID_SYNTAX",
	NotifyInvalidMessageID: "INVALID_MESSAGE_ID", NotifyInvalidSPI: "INVALID_SPI",
	NotifyNoProposalChosen: "NO_PROPOSAL_CHOSEN", NotifyInvalidKEPayload: "INVALID_KE_PAYLOAD",
	NotifyAuthenticationFailed: "AUTHENTICATION_FAILED", NotifySinglePairRequired: "SINGLE_PAIR_REQUIRED",
	NotifyNoAdditionalSAs: "NO_ADDITIONAL_SAS", NotifyInternalAddressFailure: "INTERNAL_ADDRESS_FAILURE",
	NotifyFailedCPRequired: "FAILED_CP_REQUIRED", NotifyTSUnacceptable: "TS_UNACCEPTABLE",
	NotifyInvalidSelectors: "INVALID_SELECTORS", NotifyTemporaryFailure: "TEMPORARY_FAILURE",
	NotifyChildSANotFound: "CHILD_SA_NOT_FOUND",
	NotifyInitialContact:  "INITIAL_CONTACT", NotifySetWindowSize: "SET_WINDOW_SIZE",
	NotifyAdditionalTSPossible: "ADDITIONAL_TS_POSSIBLE", NotifyIPCompSupported: "IPCOMP_SUPPORTED",
	NotifyNATDetectionSourceIP: "NAT_DETECTION_SOURCE_IP", NotifyNATDetectionDestinationIP: "NAT_DETECTION_DESTINATION_IP",
	NotifyCookie: "COOKIE", NotifyUseTransportMode: "USE_TRANSPORT_MODE",
	NotifyHTTPCertLookupSupported: "HTTP_CERT_LOOKUP_SUPPORTED", NotifyRekeySA: "REKEY_SA",
	NotifyESPTFCPaddingNotSupported: "ESP_TFC_PADDING_NOT_SUPPORTED", NotifyNonFirstFragmentsAlso: "NON_FIRST_FRAGMENTS_ALSO",
	NotifyMOBIKESupported: "MOBIKE_SUPPORTED", NotifyAdditionalIP4Address: "ADDITIONAL_IP4_ADDRESS",
	NotifyAdditionalIP6Address: "ADDITIONAL_IP6_ADDRESS", NotifyNoAdditionalAddresses: "NO_ADDITIONAL_ADDRESSES",
	NotifyUpdateSAAddresses: "UPDATE_SA_ADDRESSES", NotifyMultipleAuthSupported: "MULTIPLE_AUTH_SUPPORTED",
	NotifyRedirectSupported: "REDIRECT_SUPPORTED", NotifyEAPOnlyAuthentication: "EAP_ONLY_AUTHENTICATION",
	NotifyChildlessIKEv2Supported: "CHILDLESS_IKEV2_SUPPORTED", NotifyIKEv2MessageIDSyncSupported: "IKEV2_MESSAGE_ID_SYNC_SUPPORTED",
	NotifyIKEv2FragmentationSupported: "IKEV2_FRAGMENTATION_SUPPORTED",
	NotifySignatureHashAlgorithms:     "SIGNATURE_HASH_ALGORITHMS",
}

func (t NotifyType) String() string { return named(notifyNames, t) }

// IsError reports whether t is an error type (below 16384).
func (t NotifyType) IsError() bool { return t < 16384 }

// InvalidKE returns the INVALID_KE_PAYLOAD notify that names the group the
// responder wants (section 3.10.1: two octets, the DH group number).
func InvalidKE(g DHGroup) *Notify {
	return &Notify{NotifyType: NotifyInvalidKEPayload, Data: binary.BigEndian.AppendUint16(nil, uint16(g))}
}

// Group returns the group of an INVALID_KE_PAYLOAD notify.
func (n *Notify) Group() (DHGroup, error) {
	if n.NotifyType != NotifyInvalidKEPayload {
		return 0, fmt.Errorf("ikev2: %s notify carries no group", n.NotifyType)
	}
	if len(n.Data) != 2 {
		return 0, fmt.Errorf("ikev2: INVALID_KE_PAYLOAD with %d data bytes, want 2", len(n.Data))
	}
	return DHGroup(binary.BigEndian.Uint16(n.Data)), nil
}

// UnsupportedCritical returns the UNSUPPORTED_CRITICAL_PAYLOAD notify for
// payload type t (section 3.10.1: one octet, the payload type).
func UnsupportedCritical(t PayloadType) *Notify {
	return &Notify{NotifyType: NotifyUnsupportedCriticalPayload, Data: []byte{byte(t)}}
}

// HashAlgorithms returns the 16-bit hash algorithm identifiers of a
// SIGNATURE_HASH_ALGORITHMS notify (RFC 7427 section 4).
func (n *Notify) HashAlgorithms() ([]uint16, error) {
	if n.NotifyType != NotifySignatureHashAlgorithms || len(n.Data)%2 != 0 {
		return nil, fmt.Errorf("ikev2: %s notify with %d data bytes is no list of hash algorithms", n.NotifyType, len(n.Data))
	}
	out := make([]uint16, len(n.Data)/2)
	for i := range out {
		out[i] = binary.BigEndian.Uint16(n.Data[2*i:])
	}
	return out, nil
}

// FindNotify returns the first notify of type t in ps, or nil.
func FindNotify(ps []Payload, t NotifyType) *Notify {
	for _, p := range ps {
		if n, ok := p.(*Notify); ok && n != nil && n.NotifyType == t {
			return n
		}
	}
	return nil
}
