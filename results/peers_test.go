package results

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestPeerSection: a peer transport (PEER/TRANSPORT) is compared with wirelab's transport of the
// same kind at the same condition: its p50/p99 findings name the pair even where neither is the
// lowest, a peer clearly slower has a ratio interval above 1, one drawn from the same latencies
// says "no clear difference", and the report's section lists the pair with its server; a peer
// without wirelab's transport of its kind in the file is shown on its own.
func TestPeerSection(t *testing.T) {
	c := Cond{DelayMS: 20, Loss: 0.02}
	f := &File{Schema: Schema, Seed: 1}
	ev := map[Key]*Evidence{}
	rng := rand.New(rand.NewPCG(5, 5))
	for _, tr := range []struct {
		name, server string
		scale        float64
		late200      float64
	}{
		{"fastest", "wirelab", 0.5, 0}, // the lowest: every other p99 is compared with it
		{"websocket", "wirelab", 1, 0.1},
		{"peer/websocket", "peer", 3, 0.3},
		{"longpoll", "wirelab", 1, 0.1},
		{"other/longpoll", "other", 1, 0.1}, // same latencies: no clear difference
		{"lonely/sse", "lonely", 1, 0.1},    // no wirelab sse here: its own figures, nothing compared
	} {
		f.Runs = append(f.Runs, Run{Transport: tr.name, Carrier: CarrierTCP, Delivery: DeliveryPush, Loss: c.Loss, DelayMS: c.DelayMS,
			Delivered: 100, Expected: 100, Late: &Late{Over200: tr.late200},
			Server: ServerLoad{Name: tr.server, Version: "1.2.3", BytesPerMsg: 400}})
		e := NewEvidence()
		for _, s := range independentSessions(rng, 30, 40, 0) {
			for i := range s.LatencyMS {
				s.LatencyMS[i] *= tr.scale
			}
			e.Add(s)
		}
		ev[Key{tr.name, c}] = e
	}
	SummarizePoints(f, ev)
	rows := PeerRows(f)
	if len(rows) != 3 || rows[0].Peer != "peer/websocket" || rows[0].Match != "websocket" || rows[1].Peer != "other/longpoll" || rows[1].Match != "longpoll" ||
		rows[2].Peer != "lonely/sse" || rows[2].Match != "" || len(rows[2].Ratios) != 0 {
		t.Fatalf("peer rows %+v, want peer/websocket against websocket, other/longpoll against longpoll, lonely/sse alone", rows)
	}
	slow := rows[0].Ratios["p99"]
	if slow.RatioCI95[0] <= 1 || rows[0].Server != "peer" || rows[0].Version != "1.2.3" {
		t.Errorf("peer/websocket: p99 finding %+v, server %s %s: want a ratio interval above 1 and the peer's server", slow, rows[0].Server, rows[0].Version)
	}
	if got := rows[1].RatioText("p99"); !strings.HasPrefix(got, "no clear difference") {
		t.Errorf("other/longpoll against longpoll, same latencies: %q", got)
	}
	var md bytes.Buffer
	if err := WriteReportMD(&md, f, nil); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"## Peer servers", "| peer/websocket | websocket | peer 1.2.3 |", "| other/longpoll | longpoll | other 1.2.3 |"} {
		if !strings.Contains(md.String(), s) {
			t.Errorf("report.md lacks %q", s)
		}
	}
	// The same bar for both (the stall threshold is each transport's own): later than 200 ms.
	if !strings.Contains(md.String(), "| later than 200 ms |") || !strings.Contains(md.String(), "| 30.0% / 10.0% |") {
		t.Errorf("report.md's peer table lacks the shares later than 200 ms (30.0%% / 10.0%% for peer/websocket):\n%s", md.String())
	}
	if !strings.Contains(md.String(), "| lonely/sse | – | lonely 1.2.3 |") || !strings.Contains(md.String(), "no wirelab sse run at this condition") {
		t.Errorf("report.md does not show a peer without a match on its own:\n%s", md.String())
	}
}

func TestPeerMatch(t *testing.T) {
	for in, want := range map[string]string{"socketio/websocket": "websocket", "centrifugo/sse": "sse", "websocket": "", "x/": ""} {
		if got, _ := PeerMatch(in); got != want {
			t.Errorf("PeerMatch(%q) = %q, want %q", in, got, want)
		}
	}
}
