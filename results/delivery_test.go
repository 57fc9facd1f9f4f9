package results

import (
	"bytes"
	"math/rand/v2"
	"regexp"
	"testing"
)

// TestHeadOfLinePair: the p99 finding named apart is the push transport over TCP with the
// lowest p99 against the push transport over QUIC with the lowest, chosen by each run's carrier
// and delivery whatever the transports are called; a polling transport is in neither side.
func TestHeadOfLinePair(t *testing.T) {
	c := Cond{DelayMS: 20, Loss: 0.02}
	f := &File{Schema: Schema, Seed: 1}
	ev := map[Key]*Evidence{}
	rng := rand.New(rand.NewPCG(3, 3))
	for _, tr := range []struct {
		name, carrier, delivery string
		scale                   float64 // latencies × scale: the lower, the lower the p99
	}{
		{"fast-poll", CarrierTCP, DeliveryPoll, 0.5}, // the lowest of all: in no pair
		{"tcp-slow", CarrierTCP, DeliveryPush, 4},
		{"tcp-fast", CarrierTCP, DeliveryPush, 1},
		{"quic-slow", CarrierQUIC, DeliveryPush, 5},
		{"quic-fast", CarrierQUIC, DeliveryPush, 2},
	} {
		f.Runs = append(f.Runs, Run{Transport: tr.name, Carrier: tr.carrier, Delivery: tr.delivery, Loss: c.Loss, DelayMS: c.DelayMS, Delivered: 100})
		e := NewEvidence()
		for _, s := range independentSessions(rng, 30, 40, 0) {
			for i := range s.LatencyMS {
				s.LatencyMS[i] *= tr.scale
			}
			e.Add(s)
		}
		ev[Key{tr.name, c}] = e
	}
	SummarizePoints(f, ev) // bootstraps every point
	var pairs []Finding
	for _, fd := range f.Findings {
		if fd.Metric == "p99" && fd.B != "fast-poll" {
			pairs = append(pairs, fd)
		}
	}
	if len(pairs) != 1 || pairs[0].A != "tcp-fast" || pairs[0].B != "quic-fast" {
		t.Fatalf("p99 findings named apart: %+v, want tcp-fast against quic-fast", pairs)
	}
	// A file without a push transport over QUIC has no pair.
	f.Runs[3].Carrier, f.Runs[4].Delivery = CarrierTCP, DeliveryPoll
	for _, fd := range Findings(f, ev) {
		if fd.Metric == "p99" && fd.B != "fast-poll" {
			t.Fatalf("a pair without a QUIC push transport: %+v", fd)
		}
	}
}

// TestDelivery: every run written says its delivery, and a run that polls at an interval its
// interval; a run from a file written before deliveries is read with the delivery its
// transport's name implied then, short polling at the file's interval.
func TestDelivery(t *testing.T) {
	f := &File{Schema: Schema, PollIntervalMS: 800, Runs: []Run{
		{Transport: "shortpoll", Delivery: DeliveryPoll, PollIntervalMS: 500},
		{Transport: "longpoll", Delivery: DeliveryPoll},
		{Transport: "websocket", Delivery: DeliveryPush},
		{Transport: "tcp-x", Delivery: DeliveryPoll, PollIntervalMS: 250}, // the facts, not the name
	}}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, f); err != nil {
		t.Fatal(err)
	}
	g, err := ReadJSON(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	type facts struct {
		polls    bool
		interval bool
		ms       float64
	}
	check := func(name string, g *File, want map[string]facts) {
		t.Helper()
		for tr, w := range want {
			r := g.firstRun(tr)
			ms, interval := g.pollEvery(r)
			if r.Polls() != w.polls || g.Polls(tr) != w.polls || interval != w.interval || ms != w.ms {
				t.Errorf("%s: %s polls %v, at an interval %v of %g ms; want %+v", name, tr, r.Polls(), interval, ms, w)
			}
		}
	}
	check("new", g, map[string]facts{"shortpoll": {true, true, 500}, "longpoll": {true, false, 0}, "websocket": {}, "tcp-x": {true, true, 250}})
	if th := g.pollTheoryMS("tcp-x", 20); th != 250/2+40 {
		t.Errorf("tcp-x's theory %g ms, want %g", th, 250/2.0+40)
	}
	if g.PushTCP("longpoll") || !g.PushTCP("websocket") || g.PushQUIC("websocket") {
		t.Error("PushTCP / PushQUIC do not follow delivery and carrier")
	}

	// Before deliveries: no delivery and no per-run interval in the file.
	old := regexp.MustCompile(`\s*"(delivery|poll_interval_ms)": ("[a-z]+"|[0-9.]+),`).ReplaceAll(buf.Bytes(), nil)
	old = bytes.Replace(old, []byte(`"schema": 1,`), []byte(`"schema": 1, "poll_interval_ms": 800,`), 1)
	if bytes.Contains(old, []byte(`"delivery"`)) {
		t.Fatal("the test did not strip the deliveries")
	}
	g, err = ReadJSON(bytes.NewReader(old))
	if err != nil {
		t.Fatal(err)
	}
	check("before deliveries", g, map[string]facts{"shortpoll": {true, true, 800}, "longpoll": {true, false, 0}, "websocket": {}, "tcp-x": {}})
	// Written again, a run from before says what it was read as.
	buf.Reset()
	if err := WriteJSON(&buf, g); err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(buf.Bytes(), []byte(`"delivery": "`)); n != len(g.Runs) {
		t.Errorf("%d deliveries written for %d runs", n, len(g.Runs))
	}
	if g, err = ReadJSON(&buf); err != nil {
		t.Fatal(err)
	}
	g.PollIntervalMS = 0 // the runs carry it now
	check("written again", g, map[string]facts{"shortpoll": {true, true, 800}, "longpoll": {true, false, 0}, "websocket": {}, "tcp-x": {}})

	if p := Problems(&File{Runs: []Run{{Transport: "x", Delivery: "carrier pigeon"}}}); len(p) != 1 {
		t.Errorf("an unknown delivery: problems %q", p)
	}
}
