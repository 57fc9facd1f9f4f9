package netem

import (
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
)

// These tests run the link model (no gVisor stacks) inside a synctest
// bubble: time is virtual, so the timing checks are exact and do not
// depend on the machine's speed or load.

func TestSynctestDelayAndJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, s := modelDirection(t, 1, LinkProfile{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond})
		sent := make([]time.Time, 0, 1000)
		for i := range 1000 {
			sent = append(sent, time.Now())
			d.send([]*buffer.View{udpPacket(uint64(i), 8)}, nil)
			time.Sleep(time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.seqs) != 1000 {
			t.Fatalf("delivered %d of 1000", len(s.seqs))
		}
		var sum time.Duration
		for i, q := range s.seqs {
			if i > 0 && q < s.seqs[i-1] {
				t.Fatalf("packet %d after %d without Reorder", q, s.seqs[i-1])
			}
			dl := s.at[i].Sub(sent[q])
			// Jitter ±5 ms; the delay line may deliver up to 1 ms early.
			if dl < 14*time.Millisecond || dl > 26*time.Millisecond {
				t.Fatalf("packet %d took %v, want 20ms ± 5ms", q, dl)
			}
			sum += dl
		}
		// Without reordering a packet waits behind a slower one: the mean
		// is above 20 ms but below 25 ms.
		if mean := sum / 1000; mean < 20*time.Millisecond || mean > 25*time.Millisecond {
			t.Fatalf("mean delay %v", mean)
		}
	})
}

func TestSynctestBlackholePeriods(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, s := modelDirection(t, 1, LinkProfile{Blackhole: Blackhole{Down: 2 * time.Second, Every: 10 * time.Second}})
		// One packet every 100 ms for 30 s: down during [8,10), [18,20), [28,30).
		for i := range 300 {
			d.send([]*buffer.View{udpPacket(uint64(i), 8)}, nil)
			time.Sleep(100 * time.Millisecond)
		}
		synctest.Wait()
		s.mu.Lock()
		defer s.mu.Unlock()
		got := map[uint64]bool{}
		for _, q := range s.seqs {
			got[q] = true
		}
		for i := range uint64(300) {
			down := i%100 >= 80
			if got[i] == down {
				t.Fatalf("packet sent at %v: delivered=%v, want down=%v", time.Duration(i)*100*time.Millisecond, got[i], down)
			}
		}
		if st := d.Stats(); st.Dropped.Blackhole.Packets != 60 {
			t.Fatalf("blackhole drops %d, want 60", st.Dropped.Blackhole.Packets)
		}
	})
}

func TestSynctestRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate = 10_000_000
		d, s := modelDirection(t, 1, LinkProfile{Rate: rate, Queue: 100})
		// Offer 1028-byte packets at twice the rate for 2 s.
		gap := time.Duration(float64(1028*8) / (2 * rate) * float64(time.Second))
		for i := range int(2 * time.Second / gap) {
			d.send([]*buffer.View{udpPacket(uint64(i), 1000)}, nil)
			time.Sleep(gap)
		}
		synctest.Wait()
		s.mu.Lock()
		first, last, n := s.at[0], s.at[len(s.at)-1], len(s.at)
		s.mu.Unlock()
		got := float64((n-1)*1028*8) / last.Sub(first).Seconds()
		if got < rate*0.99 || got > rate*1.01 {
			t.Fatalf("delivered %.3f Mbit/s, want 10 ± 1%%", got/1e6)
		}
		if st := d.Stats(); st.Dropped.Queue.Packets == 0 || st.QueuePeak != 100 {
			t.Fatalf("queue drops %d peak %d: want the 100-packet queue full and dropping", st.Dropped.Queue.Packets, st.QueuePeak)
		}
	})
}

// A flow's delivered count is worked out at snapshot time from what is
// still in the delay line: check it while packets are in flight, across a
// reset, and for packets delivered at once (zero delay).
func TestSynctestFlowDeliveredCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, _ := modelDirection(t, 1, LinkProfile{Delay: 10 * time.Millisecond})
		flow := Flow{Proto: UDP, Src: netip.MustParseAddrPort("10.0.0.2:1000"), Dst: netip.MustParseAddrPort("10.0.0.1:2000")}
		check := func(when string, offered, delivered uint64) {
			t.Helper()
			fs, ok := d.FlowStats(flow)
			all := d.Flows()
			if !ok || len(all) != 1 || all[0] != fs {
				t.Fatalf("%s: FlowStats %v %v, Flows %v: want the one flow, the same in both", when, fs, ok, all)
			}
			if fs.Offered.Packets != offered || fs.Delivered.Packets != delivered || fs.Delivered.Bytes != delivered*36 {
				t.Fatalf("%s: offered %d delivered %+v, want offered %d delivered %d (36 bytes each)", when, fs.Offered.Packets, fs.Delivered, offered, delivered)
			}
			if st := d.Stats(); st.Delivered.Packets != fs.Delivered.Packets {
				t.Fatalf("%s: direction delivered %d, flow %d", when, st.Delivered.Packets, fs.Delivered.Packets)
			}
		}
		sendN(d, 10, 8)
		check("in flight", 10, 0)
		time.Sleep(20 * time.Millisecond)
		synctest.Wait()
		check("landed", 10, 10)
		sendN(d, 5, 8)
		d.ResetStats()
		check("reset with 5 in flight", 0, 0)
		time.Sleep(20 * time.Millisecond)
		synctest.Wait()
		check("after reset, landed", 0, 5)
		if err := d.SetProfile(LinkProfile{}); err != nil {
			t.Fatal(err)
		}
		sendN(d, 3, 8) // zero delay: delivered at once
		check("zero delay", 3, 8)
	})
}
