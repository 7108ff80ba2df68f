package exchange

import (
	"fmt"
	"strings"

	"github.com/vpnlab/vpnlab/ike/ikev2/wire"
)

// Error is a refusal an engine answers with a notify: Notify is the type
// to send (NO_PROPOSAL_CHOSEN, INVALID_SYNTAX, INVALID_KE_PAYLOAD,
// TS_UNACCEPTABLE, ...), Data its notification data, Reason what was wrong
// and Details the reasons per element (e.g. per proposal), for the log.
// Nothing secret is ever in an Error.
type Error struct {
	Notify  wire.NotifyType
	Data    []byte
	Reason  string
	Details []string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("ikev2: %s: %s", e.Notify, e.Reason)
	if len(e.Details) > 0 {
		s += " (" + strings.Join(e.Details, "; ") + ")"
	}
	return s
}

// Payload returns the notify payload that answers the refusal.
func (e *Error) Payload() *wire.Notify {
	return &wire.Notify{NotifyType: e.Notify, Data: append([]byte(nil), e.Data...)}
}

func refuse(n wire.NotifyType, format string, args ...any) *Error {
	return &Error{Notify: n, Reason: fmt.Sprintf(format, args...)}
}
