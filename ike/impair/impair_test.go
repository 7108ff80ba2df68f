package impair

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	good := []struct {
		in   string
		want Spec
		str  string
	}{
		{"drop:main:3", Spec{Verb: Drop, Exchange: Main, Message: 3}, "drop:main:3"},
		{" DROP:Main:1 ", Spec{Verb: Drop, Exchange: Main, Message: 1}, "drop:main:1"},
		{"drop-all:aggressive:3", Spec{Verb: DropAll, Exchange: Aggressive, Message: 3}, "drop-all:aggressive:3"},
		{"duplicate:quick:2", Spec{Verb: Duplicate, Exchange: Quick, Message: 2}, "duplicate:quick:2"},
		{"replay:informational:7", Spec{Verb: Replay, Exchange: Informational, Message: 7}, "replay:informational:7"},
		{"tunnel1/drop:main:3", Spec{Tunnel: "tunnel1", Verb: Drop, Exchange: Main, Message: 3}, "tunnel1/drop:main:3"},
		{"corrupt-hash:main", Spec{Verb: CorruptHash, Exchange: Main}, "corrupt-hash:main"},
		{"corrupt-hash:informational", Spec{Verb: CorruptHash, Exchange: Informational}, "corrupt-hash:informational"},
		{"omit-hash:quick", Spec{Verb: OmitHash, Exchange: Quick}, "omit-hash:quick"},
		{"Tunnel-A/omit-ke:aggressive", Spec{Tunnel: "Tunnel-A", Verb: OmitKE, Exchange: Aggressive}, "Tunnel-A/omit-ke:aggressive"},
		{"no-retransmit", Spec{Verb: NoRetransmit}, "no-retransmit"},
		{"vpn-1/tunnel2/no-delete", Spec{Tunnel: "vpn-1/tunnel2", Verb: NoDelete}, "vpn-1/tunnel2/no-delete"},
		{"send-twice", Spec{Verb: SendTwice}, "send-twice"},
		{"none", Spec{Verb: None}, "none"},
		{"drop:IKE_SA_INIT:1", Spec{Verb: Drop, Exchange: IKESAInit, Message: 1}, "drop:ike_sa_init:1"},
		{"tunnel1/drop-all:ike_auth:2", Spec{Tunnel: "tunnel1", Verb: DropAll, Exchange: IKEAuth, Message: 2}, "tunnel1/drop-all:ike_auth:2"},
		{"duplicate:create_child_sa:1", Spec{Verb: Duplicate, Exchange: CreateChildSA, Message: 1}, "duplicate:create_child_sa:1"},
		{"omit-ke:ike_sa_init", Spec{Verb: OmitKE, Exchange: IKESAInit}, "omit-ke:ike_sa_init"},
		{"omit-ke:create_child_sa", Spec{Verb: OmitKE, Exchange: CreateChildSA}, "omit-ke:create_child_sa"},
		{"tunnel1/none", Spec{Tunnel: "tunnel1", Verb: None}, "tunnel1/none"},
	}
	for _, g := range good {
		imp, err := Parse(g.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", g.in, err)
			continue
		}
		if imp != g.want || imp.String() != g.str {
			t.Errorf("Parse(%q) = %+v (%q), want %+v (%q)", g.in, imp, imp.String(), g.want, g.str)
		}
		again, err := Parse(imp.String())
		if err != nil || again != imp {
			t.Errorf("round trip of %q: %+v, %v", imp.String(), again, err)
		}
	}
	bad := []struct{ in, want string }{
		{"", "empty impairment"},
		{"   ", "empty impairment"},
		{"explode", `unknown verb "explode"`},
		{"drop", "drop takes an exchange and a message number"},
		{"drop:main", "drop takes an exchange and a message number"},
		{"drop:main:3:4", "drop takes an exchange and a message number"},
		{"drop:main:0", "message 0 is out of range for main mode (allowed: 1-6"},
		{"drop:main:7", "message 7 is out of range for main mode (allowed: 1-6"},
		{"drop:aggressive:4", "out of range for aggressive mode (allowed: 1-3"},
		{"replay:quick:4", "out of range for quick mode (allowed: 1-3"},
		{"drop:informational:0", "out of range for informational"},
		{"drop:main:x", `message number "x" is not a positive integer`},
		{"drop:main:+3", `message number "+3" is not a positive integer`},
		{"drop:main:-3", `message number "-3" is not a positive integer`},
		{"drop:base:1", `unknown or unsupported exchange "base"`},
		{"omit-ke:informational", `unknown or unsupported exchange "informational" (allowed for omit-ke: main, aggressive, quick`},
		{"corrupt-hash", "corrupt-hash takes an exchange"},
		{"drop:ike_auth:3", "message 3 is out of range for ike_auth (allowed: 1-2"},
		{"replay:create_child_sa:0", "out of range for create_child_sa (allowed: 1-2"},
		{"omit-ke:ike_auth", "omit-ke: IKE_AUTH carries no KE payload"},
		{"corrupt-hash:ike_auth", "corrupt-hash: IKEv2 exchange ike_auth has no HASH payload"},
		{"omit-hash:ike_sa_init", "omit-hash: IKEv2 exchange ike_sa_init has no HASH payload"},
		{"corrupt-hash:create_child_sa", "has no HASH payload"},
		{"corrupt-hash:main:5", "corrupt-hash takes an exchange"},
		{"no-retransmit:main", "no-retransmit takes no arguments"},
		{"none:all", "none takes no arguments"},
		{"/drop:main:1", "empty tunnel name"},
		{"tunnel1/", `unknown verb ""`},
	}
	for _, b := range bad {
		_, err := Parse(b.in)
		if err == nil {
			t.Errorf("Parse(%q) succeeded", b.in)
			continue
		}
		if !strings.Contains(err.Error(), b.want) {
			t.Errorf("Parse(%q) = %q, want it to contain %q", b.in, err, b.want)
		}
		if !strings.Contains(err.Error(), "allowed: drop:EXCHANGE:N") && !strings.Contains(err.Error(), "allowed: 1-") {
			t.Errorf("Parse(%q) = %q: does not say what is allowed", b.in, err)
		}
	}
	for ex, want := range map[Exchange][2]bool{Main: {true, false}, Quick: {true, false}, Informational: {true, true},
		IKESAInit: {false, true}, IKEAuth: {false, true}, CreateChildSA: {false, true}} {
		if ex.IKEv1() != want[0] || ex.IKEv2() != want[1] {
			t.Errorf("%s: IKEv1() %v IKEv2() %v, want %v", ex, ex.IKEv1(), ex.IKEv2(), want)
		}
	}
	// Built in code, checked the same way.
	for _, imp := range []Spec{{Verb: "boom"}, {Verb: Drop, Exchange: Main}, {Verb: SendTwice, Message: 2}, {Verb: OmitKE, Exchange: Informational}} {
		if imp.Validate() == nil {
			t.Errorf("Validate(%+v) accepted it", imp)
		}
	}
}
