package gwconfig

import (
	"io"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike"
	"github.com/vpnlab/vpnlab/ike/impair"
)

func TestImpair(t *testing.T) {
	two := minimal("") + `  - name: tunnel2
    local_address: 203.0.113.10
    remote_address: 198.51.100.3
    psk_env: VPNLAB_TEST_PSK
`
	for _, p := range []Profile{VGW, CGW} {
		c := mustParse(t, p, two+"impair:\n  - drop:main:1\n  - tunnel2/No-Delete\n  - send-twice\n")
		want := []impair.Spec{
			{Verb: impair.Drop, Exchange: impair.Main, Message: 1},
			{Tunnel: "tunnel2", Verb: impair.NoDelete},
			{Verb: impair.SendTwice},
		}
		if len(c.IKE.Impairments) != len(want) {
			t.Fatalf("%s: impairments %+v", p, c.IKE.Impairments)
		}
		for i := range want {
			if c.IKE.Impairments[i] != want[i] {
				t.Fatalf("%s: impairment %d = %+v, want %+v", p, i, c.IKE.Impairments[i], want[i])
			}
		}
		if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].String(), "impair: protocol impairments are active (drop:main:1, tunnel2/no-delete, send-twice)") {
			t.Fatalf("%s: warnings %v", p, c.Warnings)
		}
		if !strings.Contains(c.Summary(), "impair:             drop:main:1, tunnel2/no-delete, send-twice\n") ||
			!strings.Contains(c.Describe(), " impair=drop:main:1,tunnel2/no-delete,send-twice") {
			t.Fatalf("%s: summary/describe lack the impairments:\n%s\n%s", p, c.Summary(), c.Describe())
		}
		// The engine accepts what the configuration produced.
		quiet := logrus.New()
		quiet.SetOutput(io.Discard)
		if _, err := ike.NewEngine(c.IKE, ike.WithLogger(quiet)); err != nil {
			t.Fatalf("%s: NewEngine: %v", p, err)
		}
	}
	// One entry as a plain string; none at all.
	if c := mustParse(t, CGW, minimal("")+"impair: corrupt-hash:quick\n"); len(c.IKE.Impairments) != 1 || c.IKE.Impairments[0].Verb != impair.CorruptHash {
		t.Fatalf("impairments %+v", c.IKE.Impairments)
	}
	// none clears what came before (of its tunnel), repeats are kept once.
	c := mustParse(t, CGW, two+"impair: [send-twice, tunnel1/no-delete, tunnel2/no-delete, tunnel1/none, send-twice]\n")
	if got := strings.Join(c.impairSpecs(), " "); got != "send-twice tunnel2/no-delete" {
		t.Fatalf("effective impairments %q", got)
	}
	c = mustParse(t, CGW, minimal("")+"impair: [no-retransmit, none]\n")
	if len(c.IKE.Impairments) != 0 || len(c.Warnings) != 0 {
		t.Fatalf("after none: %+v %v", c.IKE.Impairments, c.Warnings)
	}
	c = mustParse(t, VGW, minimal(""))
	if len(c.IKE.Impairments) != 0 || len(c.Warnings) != 0 || strings.Contains(c.Summary(), "impair") {
		t.Fatalf("without impair: %+v %v", c.IKE.Impairments, c.Warnings)
	}

	// Errors name the entry, its line and what is allowed; all are reported.
	err := wantErr(t, CGW, two+"impair:\n  - drop:main:1\n  - drop:main:9\n  - explode\n  - tunnel3/no-delete\n",
		`test.yaml:12: impair[1]: impairment "drop:main:9": message 9 is out of range for main mode (allowed: 1-6`,
		`test.yaml:13: impair[2]: impairment "explode": unknown verb "explode" (allowed: drop:EXCHANGE:N`,
		`test.yaml:14: impair[3]: "tunnel3/no-delete": no tunnel is named "tunnel3" (tunnels: tunnel1, tunnel2)`)
	if n := len(err.(ErrorList)); n != 3 {
		t.Fatalf("%d errors, want 3: %v", n, err)
	}
	wantErr(t, VGW, minimal("")+"impair:\n  - {drop: main}\n", "impair: expected a list of values, got a mapping in it")
	wantErr(t, VGW, minimal("")+"impair: {drop: main}\n", "impair: expected a list, got a mapping")
}
