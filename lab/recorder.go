package lab

import (
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/results"
)

// copyRec is one delivered copy.
type copyRec struct {
	session  int32 // set by Audit
	msg      int32
	seq      uint64        // the copy's seq in the recipient's session
	lat      time.Duration // receipt - scheduled send time
	recv     time.Duration // receipt, since t0
	accepted time.Duration // when the server accepted the message (its ts), since t0
}

// sessionLog is what one session received; only its reader goroutine touches it.
type sessionLog struct {
	recs    []copyRec
	seen    []uint64 // bitset over message indexes
	dups    int64
	ooo     int64
	lastSeq uint64
	errors  int64 // gap and other error envelopes
}

// Recorder audits deliveries of one run against the schedule.
type Recorder struct {
	pop      Population
	msgs     []Message
	t0       time.Time
	warmup   time.Duration
	end      time.Duration // warmup + duration
	sessions []sessionLog
	acked    []atomic.Bool
	ackAt    []atomic.Int64
	sendLag  []atomic.Int64 // how late each send started, ns
	expected []int32        // per message: copies expected
	changed  chan struct{}

	mu      sync.Mutex
	got     []int32 // per message: distinct copies delivered
	pending int64   // expected copies of acked measured messages not yet delivered
}

// NewRecorder prepares the audit of msgs over pop, with t0 the start of warmup.
func NewRecorder(pop Population, msgs []Message, t0 time.Time, warmup, duration time.Duration) *Recorder {
	r := &Recorder{pop: pop, msgs: msgs, t0: t0, warmup: warmup, end: warmup + duration,
		sessions: make([]sessionLog, pop.Sessions()), acked: make([]atomic.Bool, len(msgs)),
		ackAt: make([]atomic.Int64, len(msgs)), sendLag: make([]atomic.Int64, len(msgs)),
		expected: make([]int32, len(msgs)), changed: make(chan struct{}, 1), got: make([]int32, len(msgs))}
	words := (len(msgs) + 63) / 64
	aud := newAudience(pop)
	var scratch []int
	for i, m := range msgs {
		scratch = aud.recipients(m, scratch[:0])
		r.expected[i] = int32(len(scratch))
	}
	for i := range r.sessions {
		r.sessions[i].seen = make([]uint64, words)
	}
	return r
}

// measured reports whether message i counts (scheduled inside the measured window).
func (r *Recorder) measured(i int) bool {
	at := r.msgs[i].At
	return at >= r.warmup && at < r.end
}

// Started records how late the send of message i started.
func (r *Recorder) Started(i int, lag time.Duration) { r.sendLag[i].Store(int64(lag)) }

// Acked records the server's ok for message i.
func (r *Recorder) Acked(i int, at time.Time) {
	r.mu.Lock()
	if r.acked[i].Load() {
		r.mu.Unlock()
		return
	}
	r.acked[i].Store(true)
	r.ackAt[i].Store(int64(at.Sub(r.t0)))
	if r.measured(i) {
		r.pending += int64(r.expected[i] - r.got[i])
	}
	r.mu.Unlock()
	r.signal()
}

func (r *Recorder) signal() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// Deliver records an envelope received by session s. Only s's reader goroutine calls it.
func (r *Recorder) Deliver(s int, env chat.Envelope, at time.Time) {
	log := &r.sessions[s]
	if env.Type == chat.TypeError {
		log.errors++
		return
	}
	if env.Type != chat.TypeMsg {
		return
	}
	if env.Seq > 0 {
		if env.Seq < log.lastSeq {
			log.ooo++
		} else {
			log.lastSeq = env.Seq
		}
	}
	i := ParseText(env.Text)
	if i < 0 || i >= len(r.msgs) {
		return
	}
	w, bit := i/64, uint64(1)<<(i%64)
	if log.seen[w]&bit != 0 {
		if r.measured(i) {
			log.dups++
		}
		return
	}
	log.seen[w] |= bit
	if !r.measured(i) {
		return
	}
	recv := at.Sub(r.t0)
	log.recs = append(log.recs, copyRec{msg: int32(i), seq: env.Seq, lat: recv - r.msgs[i].At, recv: recv,
		accepted: time.Unix(0, env.TS).Sub(r.t0)})
	r.mu.Lock()
	r.got[i]++
	if r.acked[i].Load() {
		r.pending--
	}
	zero := r.pending == 0
	r.mu.Unlock()
	if zero {
		r.signal()
	}
}

// Outstanding is how many expected copies of acknowledged messages have not arrived; Changed
// signals when it may have changed.
func (r *Recorder) Outstanding() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pending
}
func (r *Recorder) Changed() <-chan struct{} { return r.changed }

// Delivered counts the copies that arrived of messages that were acknowledged or not. A copy of a
// message whose ok was lost still arrived: it is delivered, and the message counts as sent.
type audit struct {
	sent, expected, delivered, lost, dups, ooo, unacked int64
	lats                                                []copyRec
	missing                                             []copyKey // the first lost copies, for diagnosis
	hist                                                *hdrhistogram.Histogram
}

// Audit tallies the run: expected copies from membership, what arrived, latencies.
func (r *Recorder) Audit() audit {
	var a audit
	a.hist = hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
	got := make([]int32, len(r.msgs))
	for s := range r.sessions {
		log := &r.sessions[s]
		a.dups += log.dups
		a.ooo += log.ooo
		for _, c := range log.recs {
			got[c.msg]++
			c.session = int32(s)
			a.lats = append(a.lats, c)
			_ = a.hist.RecordValue(max(1, int64(c.lat/time.Microsecond)))
		}
	}
	for i := range r.msgs {
		if !r.measured(i) {
			continue
		}
		if !r.acked[i].Load() && got[i] == 0 {
			a.unacked++ // never accepted by the server as far as anyone saw: not sent
			continue
		}
		a.sent++
		a.expected += int64(r.expected[i])
		a.delivered += int64(got[i])
	}
	a.lost = a.expected - a.delivered
	if a.lost < 0 {
		a.lost = 0
	}
	if a.lost > 0 {
		aud := newAudience(r.pop)
		var scratch []int
		for i := range r.msgs {
			if !r.measured(i) || got[i] >= r.expected[i] || (!r.acked[i].Load() && got[i] == 0) {
				continue
			}
			scratch = aud.recipients(r.msgs[i], scratch[:0])
			for _, s := range scratch {
				if w, bit := i/64, uint64(1)<<(i%64); r.sessions[s].seen[w]&bit == 0 && len(a.missing) < 20 {
					a.missing = append(a.missing, copyKey{int32(s), int32(i)})
				}
			}
		}
	}
	return a
}

// latency turns the histogram into the results' percentiles (ms).
func latency(h *hdrhistogram.Histogram) results.Latency {
	if h.TotalCount() == 0 {
		return results.Latency{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return results.Latency{
		P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)), P99: ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max()), Mean: h.Mean() / 1000,
	}
}

// sendLagP99 is the 99th percentile of how late sends started (ms).
func (r *Recorder) sendLagP99() float64 {
	var lags []int64
	for i := range r.msgs {
		if r.measured(i) {
			lags = append(lags, r.sendLag[i].Load())
		}
	}
	if len(lags) == 0 {
		return 0
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	return float64(lags[(len(lags)*99)/100]) / 1e6
}

// subsample keeps at most n copies, seeded, in time order.
func subsample(recs []copyRec, n int, seed uint64) []copyRec {
	if len(recs) <= n {
		out := append([]copyRec(nil), recs...)
		sort.Slice(out, func(i, j int) bool { return out[i].recv < out[j].recv })
		return out
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	idx := rng.Perm(len(recs))[:n]
	sort.Ints(idx)
	out := make([]copyRec, n)
	for i, j := range idx {
		out[i] = recs[j]
	}
	sort.Slice(out, func(i, j int) bool { return out[i].recv < out[j].recv })
	return out
}

// audience precomputes room membership so recipients is cheap.
type audience struct {
	pop   Population
	rooms map[string][]int
}

func newAudience(pop Population) *audience {
	a := &audience{pop: pop, rooms: map[string][]int{}}
	for u := 0; u < pop.Users; u++ {
		r := pop.RoomOf(u)
		for t := 0; t < pop.Tabs; t++ {
			a.rooms[r] = append(a.rooms[r], u*pop.Tabs+t)
		}
	}
	return a
}

func (a *audience) recipients(m Message, dst []int) []int {
	if m.Kind == KindDM {
		return a.pop.Recipients(m, dst)
	}
	return append(dst, a.rooms[m.Room]...)
}
