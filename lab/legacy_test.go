package lab

import (
	"strings"
	"testing"

	"github.com/wirelab/wirelab/peers"
	"github.com/wirelab/wirelab/results"
	"github.com/wirelab/wirelab/transports/all"
)

// TestLegacyFacts: what the lab tells results of a run from an old file (one without carrier and
// delivery) is what those files' transport names meant: the WebTransport modes and auto on QUIC,
// the rest on TCP; short polling polls at the file's interval, long polling polls, the rest are
// pushed. A peer's transport (none in old files) gets its table's row; an unknown name nothing.
func TestLegacyFacts(t *testing.T) {
	for _, name := range all.Names() {
		c, d, interval := legacyFacts(name)
		wantC, wantD, wantI := results.CarrierTCP, results.DeliveryPush, false
		if strings.HasPrefix(name, "wt-") || name == "auto" {
			wantC = results.CarrierQUIC
		}
		switch name {
		case "shortpoll":
			wantD, wantI = results.DeliveryPoll, true
		case "longpoll":
			wantD = results.DeliveryPoll
		}
		if c != wantC || d != wantD || interval != wantI {
			t.Errorf("%s: %s %s %v, want %s %s %v", name, c, d, interval, wantC, wantD, wantI)
		}
	}
	if c, d, _ := legacyFacts(peers.Table[0].Name); c != results.CarrierTCP || d == "" {
		t.Errorf("%s: carrier %q delivery %q", peers.Table[0].Name, c, d)
	}
	if c, d, i := legacyFacts("carrier-pigeon"); c != "" || d != "" || i {
		t.Errorf("an unknown transport: %q %q %v", c, d, i)
	}
	if results.Legacy == nil {
		t.Error("the lab does not set results.Legacy")
	}
}
