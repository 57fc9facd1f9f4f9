package netem

import (
	"encoding/binary"
	"math"
	"net/netip"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
)

// udpPacket builds an IPv4/UDP packet from 10.0.0.2:1000 to 10.0.0.1:2000
// carrying seq in its first 8 payload bytes.
func udpPacket(seq uint64, payload int) *buffer.View {
	b := make([]byte, 28+max(payload, 8))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	b[8] = 64
	b[9] = byte(UDP)
	copy(b[12:16], []byte{10, 0, 0, 2})
	copy(b[16:20], []byte{10, 0, 0, 1})
	binary.BigEndian.PutUint16(b[20:22], 1000)
	binary.BigEndian.PutUint16(b[22:24], 2000)
	binary.BigEndian.PutUint16(b[24:26], uint16(len(b)-20))
	binary.BigEndian.PutUint64(b[28:36], seq)
	return buffer.NewViewWithData(b)
}

// sink is a receiving host that records the sequence numbers it gets.
type sink struct {
	mu   sync.Mutex
	seqs []uint64
	at   []time.Time
}

func (s *sink) deliver(vs []*buffer.View) {
	now := time.Now()
	s.mu.Lock()
	for _, v := range vs {
		s.seqs = append(s.seqs, binary.BigEndian.Uint64(v.AsSlice()[28:36]))
		s.at = append(s.at, now)
		v.Release()
	}
	s.mu.Unlock()
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seqs)
}

// modelDirection runs one direction of the link model on synthetic packets,
// without stacks.
func modelDirection(t testing.TB, seed uint64, p LinkProfile) (*Direction, *sink) {
	t.Helper()
	c, err := p.compile()
	if err != nil {
		t.Fatal(err)
	}
	n := New(Config{Seed: seed, TraceLimit: -1})
	s := &sink{}
	from := &Host{n: n, addr: netip.MustParseAddr("10.0.0.2")}
	to := &Host{n: n, addr: netip.MustParseAddr("10.0.0.1"), deliver: s.deliver}
	d := newDirection(n, from, to, c)
	n.links = append(n.links, &Link{AB: d, BA: newDirection(n, to, from, c)})
	n.wg.Add(1)
	go d.run()
	t.Cleanup(func() { n.Close() })
	return d, s
}

// sendN pushes n packets through d in batches of 64, as a NIC pump would.
func sendN(d *Direction, n int, payload int) {
	var scratch []*buffer.View
	batch := make([]*buffer.View, 0, 64)
	for i := range n {
		batch = append(batch, udpPacket(uint64(i), payload))
		if len(batch) == cap(batch) || i == n-1 {
			scratch = d.send(batch, scratch)
			batch = batch[:0]
		}
	}
}

// lossRuns returns the lengths of the runs of consecutive missing sequence
// numbers among 0..n-1, given the delivered ones in order.
func lossRuns(delivered []uint64, n int) (lost int, runs []int) {
	got := make([]bool, n)
	for _, s := range delivered {
		got[s] = true
	}
	run := 0
	for _, ok := range got {
		if !ok {
			lost++
			run++
			continue
		}
		if run > 0 {
			runs = append(runs, run)
			run = 0
		}
	}
	if run > 0 {
		runs = append(runs, run)
	}
	return lost, runs
}

func TestBernoulliLossWithinBinomialInterval(t *testing.T) {
	for _, rate := range []float64{0.001, 0.02, 0.1} {
		for seed := uint64(1); seed <= 3; seed++ {
			const n = 200_000
			d, s := modelDirection(t, seed, LinkProfile{Loss: Loss{Rate: rate}})
			sendN(d, n, 8)
			lost, _ := lossRuns(s.seqs, n)
			st := d.Stats()
			if uint64(lost) != st.Dropped.Loss.Packets || st.Delivered.Packets+st.Dropped.Loss.Packets != n {
				t.Fatalf("counters disagree: lost %d, stats %+v", lost, st)
			}
			// 99% two-sided normal approximation of the binomial interval.
			mean := n * rate
			sd := math.Sqrt(n * rate * (1 - rate))
			if math.Abs(float64(lost)-mean) > 2.576*sd {
				t.Errorf("rate %g seed %d: lost %d of %d, want %.0f ± %.0f (99%%)", rate, seed, lost, n, mean, 2.576*sd)
			}
		}
	}
}

func TestGilbertElliottMeanBurst(t *testing.T) {
	cases := []struct {
		name      string
		loss      Loss
		wantBurst float64
		wantRate  float64
	}{
		{"short form 2% burst 3", Loss{Rate: 0.02, Burst: 3}, 3, 0.02},
		{"short form 5% burst 10", Loss{Rate: 0.05, Burst: 10}, 10, 0.05},
		{"gemodel 1% 25% 100% 0%", Loss{GE: GEParams{P: 0.01, R: 0.25, BadLoss: 1}}, 4, 0.01 / 0.26},
		// Lossy good state and a leaky bad state: only the long-run rate
		// has a simple closed form.
		{"gemodel 5% 50% 50% 1%", Loss{GE: GEParams{P: 0.05, R: 0.5, BadLoss: 0.5, GoodLoss: 0.01}}, 0, GEParams{P: 0.05, R: 0.5, BadLoss: 0.5, GoodLoss: 0.01}.Stationary()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			const n = 400_000
			d, s := modelDirection(t, 42, LinkProfile{Loss: tc.loss})
			sendN(d, n, 8)
			lost, runs := lossRuns(s.seqs, n)
			mean := float64(lost) / float64(len(runs))
			if tc.wantBurst > 0 && math.Abs(mean-tc.wantBurst) > 0.1*tc.wantBurst {
				t.Errorf("mean burst %.2f packets over %d bursts, want %.1f ± 10%%", mean, len(runs), tc.wantBurst)
			}
			rate := float64(lost) / n
			if math.Abs(rate-tc.wantRate) > 0.15*tc.wantRate {
				t.Errorf("loss rate %.4f, want %.4f ± 15%%", rate, tc.wantRate)
			}
		})
	}
}

func TestNoReorderingUnlessAsked(t *testing.T) {
	for _, reorder := range []bool{false, true} {
		const n = 3000
		d, s := modelDirection(t, 3, LinkProfile{Delay: 5 * time.Millisecond, Jitter: 4 * time.Millisecond, Reorder: reorder})
		for i := 0; i < n; i += 30 {
			var scratch []*buffer.View
			batch := []*buffer.View{}
			for j := i; j < i+30; j++ {
				batch = append(batch, udpPacket(uint64(j), 8))
			}
			d.send(batch, scratch)
			time.Sleep(100 * time.Microsecond)
		}
		deadline := time.Now().Add(10 * time.Second)
		for s.count() < n && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		s.mu.Lock()
		inversions := 0
		for i := 1; i < len(s.seqs); i++ {
			if s.seqs[i] < s.seqs[i-1] {
				inversions++
			}
		}
		got := len(s.seqs)
		s.mu.Unlock()
		if got != n {
			t.Fatalf("reorder=%v: delivered %d of %d", reorder, got, n)
		}
		if !reorder && inversions != 0 {
			t.Errorf("reorder=false: %d packets arrived out of order", inversions)
		}
		if reorder && (inversions == 0 || d.Stats().Reordered == 0) {
			t.Errorf("reorder=true: no reordering with 4ms jitter (stats %d)", d.Stats().Reordered)
		}
	}
}

func TestDelayIsApplied(t *testing.T) {
	d, s := modelDirection(t, 1, LinkProfile{Delay: 30 * time.Millisecond})
	start := time.Now()
	sendN(d, 10, 8)
	for s.count() < 10 {
		time.Sleep(time.Millisecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// The delay line may deliver up to 1 ms early (see maxTimerLate).
	if el := s.at[0].Sub(start); el < 29*time.Millisecond {
		t.Fatalf("first packet after %v, want 30ms (at least 29ms)", el)
	}
}

func TestQueueDropTail(t *testing.T) {
	// 1 Mbit/s and 10 packets of queue: a burst of 100 packets of 1028
	// bytes keeps 10 and drops 90.
	d, _ := modelDirection(t, 1, LinkProfile{Rate: 1_000_000, Queue: 10})
	sendN(d, 100, 1000)
	st := d.Stats()
	if st.Dropped.Queue.Packets != 90 || st.QueuePeak != 10 {
		t.Fatalf("queue drops %d, peak %d; want 90 and 10", st.Dropped.Queue.Packets, st.QueuePeak)
	}
}

func TestBlockAndBlackhole(t *testing.T) {
	cases := []struct {
		name  string
		p     LinkProfile
		cause func(DropCounts) uint64
	}{
		{"block udp", LinkProfile{BlockUDP: true}, func(c DropCounts) uint64 { return c.Blocked.Packets }},
		{"block port", LinkProfile{BlockPorts: []uint16{2000}}, func(c DropCounts) uint64 { return c.Blocked.Packets }},
		{"blackhole", LinkProfile{Blackhole: Blackhole{Down: time.Hour, Every: time.Hour}}, func(c DropCounts) uint64 { return c.Blackhole.Packets }},
		{"drop rule", LinkProfile{Drops: []DropRule{{Proto: UDP, Port: 2000, Packets: []int{5, 6}}}}, func(c DropCounts) uint64 { return c.Rule.Packets }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, s := modelDirection(t, 1, tc.p)
			sendN(d, 100, 8)
			st := d.Stats()
			got := tc.cause(st.Dropped)
			if tc.name == "drop rule" {
				if got != 2 || s.count() != 98 {
					t.Fatalf("dropped %d, delivered %d; want packets 5 and 6 dropped", got, s.count())
				}
				for _, q := range s.seqs {
					if q == 4 || q == 5 {
						t.Fatalf("packet %d delivered; want it dropped", q+1)
					}
				}
				return
			}
			if got != 100 || s.count() != 0 {
				t.Fatalf("dropped %d, delivered %d; want all 100 dropped", got, s.count())
			}
		})
	}
}

func TestSetProfileLive(t *testing.T) {
	d, s := modelDirection(t, 1, LinkProfile{})
	sendN(d, 100, 8)
	if err := d.SetProfile(LinkProfile{BlockUDP: true}); err != nil {
		t.Fatal(err)
	}
	sendN(d, 100, 8)
	if err := d.SetProfile(LinkProfile{Loss: Loss{Rate: 2}}); err == nil {
		t.Fatal("SetProfile accepted a loss of 200%")
	}
	if s.count() != 100 || d.Stats().Dropped.Blocked.Packets != 100 {
		t.Fatalf("delivered %d, blocked %d; want 100 and 100", s.count(), d.Stats().Dropped.Blocked.Packets)
	}
}
