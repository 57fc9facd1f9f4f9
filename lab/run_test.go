package lab

import (
	"context"
	"testing"
	"time"

	"github.com/wirelab/wirelab/scenarios"
)

// A small sweep through the emulated network: every copy of every acknowledged message arrives
// once, at 0% and at 2% loss, and the link really lost packets.
func TestRunSmall(t *testing.T) {
	transports := "[websocket, longpoll, wt-uni]"
	if testing.Short() {
		transports = "[websocket]"
	}
	sc, err := scenarios.Parse("small.yaml", []byte(`name: small
seed: 3
duration: 2s
warmup: 500ms
transports: `+transports+`
users: 10
tabs: 2
rooms: 2
workload: {rate: 40/s, size: 100}
link: {delay: 20ms, loss: [2%]}
`))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Run(context.Background(), sc, Options{InProcess: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Runs) != len(sc.Points()) {
		t.Fatalf("%d runs, want %d", len(f.Runs), len(sc.Points()))
	}
	for _, r := range f.Runs {
		t.Logf("%s loss %.2f: sent %d expected %d delivered %d lost %d dup %d p50 %.1f p99 %.1f stalls %+v link %+v",
			r.Transport, r.Loss, r.Sent, r.Expected, r.Delivered, r.Lost, r.Duplicates, r.Latency.P50, r.Latency.P99, r.Stalls, r.Link)
		if r.Sent == 0 || r.Expected == 0 {
			t.Errorf("%s: nothing sent", r.Transport)
		}
		if r.Lost != 0 || r.Duplicates != 0 || r.Delivered != r.Expected {
			t.Errorf("%s at %g loss: lost %d, duplicated %d, delivered %d of %d", r.Transport, r.Loss, r.Lost, r.Duplicates, r.Delivered, r.Expected)
		}
		if r.Loss > 0 && r.Link.Dropped == 0 {
			t.Errorf("%s at %g loss: the link dropped nothing", r.Transport, r.Loss)
		}
		if r.Loss == 0 && r.Link.Dropped != 0 {
			t.Errorf("%s at 0 loss: the link dropped %d", r.Transport, r.Link.Dropped)
		}
		if r.Latency.P50 <= 2*r.DelayMS {
			t.Errorf("%s: p50 %.1f ms is below the physical floor of 2 one-way delays (%.0f ms)", r.Transport, r.Latency.P50, 2*r.DelayMS)
		}
		if len(r.Samples) == 0 {
			t.Errorf("%s: no latency samples", r.Transport)
		}
	}
	if f.Seed != 3 || f.Go == "" || f.Machine.CPUs == 0 {
		t.Errorf("header: seed %d go %q cpus %d", f.Seed, f.Go, f.Machine.CPUs)
	}
}

func TestScheduleSeeded(t *testing.T) {
	sc, err := scenarios.Parse("s.yaml", []byte("name: s\nusers: 20\nduration: 10s\nworkload: {rate: 100/s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, b := Schedule(sc, 7), Schedule(sc, 7)
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("lengths %d %d", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("message %d differs for the same seed", i)
		}
	}
	c := Schedule(sc, 8)
	if len(c) == len(a) && c[0] == a[0] && c[1] == a[1] {
		t.Fatalf("another seed gave the same schedule")
	}
	// Rate: 100/s over 12 s (warmup included) is 1200 expected; Poisson sd is about 35.
	if n := len(a); n < 1000 || n > 1400 {
		t.Fatalf("%d messages for 1200 expected", n)
	}
	dms := 0
	for _, m := range a {
		if m.Kind == KindDM {
			dms++
			if m.To == (Population{Users: 20, Tabs: 2}).UserOf(m.Sender) {
				t.Fatalf("a DM to its own sender")
			}
		}
	}
	if share := float64(dms) / float64(len(a)); share < 0.15 || share > 0.25 {
		t.Fatalf("DM share %.2f, configured 0.2", share)
	}
}

func TestTextRoundTrip(t *testing.T) {
	for _, i := range []int{0, 7, 123456} {
		for _, size := range []int{1, 10, 200} {
			if got := ParseText(Text(i, size)); got != i {
				t.Errorf("ParseText(Text(%d, %d)) = %d", i, size, got)
			}
			if size >= 10 && len(Text(i, size)) != size {
				t.Errorf("Text(%d, %d) has %d bytes", i, size, len(Text(i, size)))
			}
		}
	}
	for _, s := range []string{"", "m", "m.", "mx.", "hello", "m12"} {
		if ParseText(s) != -1 {
			t.Errorf("ParseText(%q) = %d, want -1", s, ParseText(s))
		}
	}
}

// TestScheduleTurns: with sender: turns every session sends in turn, evenly spaced at the rate.
func TestScheduleTurns(t *testing.T) {
	sc, err := scenarios.Parse("s.yaml", []byte("name: s\nusers: 4\ntabs: 1\nwarmup: 0s\nduration: 2s\nworkload: {rate: 10/s, sender: turns, mix: {room: 1}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	ms := Schedule(sc, 1)
	if len(ms) != 20 {
		t.Fatalf("%d messages in 2 s at 10/s, want 20", len(ms))
	}
	for i, m := range ms {
		if m.Sender != i%4 {
			t.Errorf("message %d sent by session %d, want %d (in turn)", i, m.Sender, i%4)
		}
		if i > 0 {
			if gap := m.At - ms[i-1].At; gap < 99*time.Millisecond || gap > 101*time.Millisecond {
				t.Errorf("gap before message %d is %v, want 100 ms", i, gap)
			}
		}
	}
}
