package netem

import (
	"hash/fnv"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
)

// DropCause says why the link dropped a packet.
type DropCause uint8

// The causes of a drop, in the order the link applies them.
const (
	DropBlocked   DropCause = iota // BlockUDP or BlockPorts
	DropBlackhole                  // inside a blackhole period
	DropByRule                     // a deterministic DropRule
	DropLoss                       // the random loss model
	DropQueue                      // the rate limiter's queue was full
	numCauses
)

var causeNames = [numCauses]string{"blocked", "blackhole", "rule", "loss", "queue"}

func (c DropCause) String() string {
	if c < numCauses {
		return causeNames[c]
	}
	return "unknown"
}

// MarshalText makes causes readable in JSON.
func (c DropCause) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// Counter counts packets and their bytes at the IP layer (headers included).
type Counter struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

func (c *Counter) add(size int) {
	c.Packets++
	c.Bytes += uint64(size)
}

// DropCounts counts drops by cause.
type DropCounts struct {
	Blocked   Counter `json:"blocked"`
	Blackhole Counter `json:"blackhole"`
	Rule      Counter `json:"rule"`
	Loss      Counter `json:"loss"`
	Queue     Counter `json:"queue"`
}

func (d *DropCounts) add(c DropCause, size int) {
	switch c {
	case DropBlocked:
		d.Blocked.add(size)
	case DropBlackhole:
		d.Blackhole.add(size)
	case DropByRule:
		d.Rule.add(size)
	case DropLoss:
		d.Loss.add(size)
	case DropQueue:
		d.Queue.add(size)
	}
}

// Total sums the drops over all causes.
func (d DropCounts) Total() Counter {
	var t Counter
	for _, c := range []Counter{d.Blocked, d.Blackhole, d.Rule, d.Loss, d.Queue} {
		t.Packets += c.Packets
		t.Bytes += c.Bytes
	}
	return t
}

// DirectionStats are the counters of one direction of a link.
type DirectionStats struct {
	// At is when the snapshot was taken, since the network was created.
	At        time.Duration `json:"at_ns"`
	From      netip.Addr    `json:"from"`
	To        netip.Addr    `json:"to"`
	Offered   Counter       `json:"offered"`   // packets that reached the link
	Delivered Counter       `json:"delivered"` // packets handed to the receiving host
	Dropped   DropCounts    `json:"dropped"`
	Reordered uint64        `json:"reordered"` // packets scheduled before an earlier packet (Reorder only)
	QueuePeak int           `json:"queue_peak"`
	// RateSent counts the packets whose serialization by the rate limiter
	// has finished, and RateIdle how long the limiter has sat idle, both up
	// to the snapshot. Over a window, RateSent's bits divided by the
	// window less RateIdle is the rate while the sender kept the limiter
	// busy, whatever the machine's speed.
	RateSent Counter       `json:"rate_sent"`
	RateIdle time.Duration `json:"rate_idle_ns"`
	// InFlight is the number of packets in the link (queued or delayed)
	// at the time of the snapshot: Offered = Delivered + Dropped + InFlight.
	InFlight int `json:"in_flight"`
}

// FlowStats are the counters of one flow in one direction.
type FlowStats struct {
	Flow      Flow       `json:"flow"`
	Offered   Counter    `json:"offered"`
	Delivered Counter    `json:"delivered"`
	Dropped   DropCounts `json:"dropped"`
	// ISN is the initial sequence number seen in this direction's SYN
	// (TCP only, when HaveISN).
	ISN     uint32 `json:"isn"`
	HaveISN bool   `json:"have_isn"`
}

// DropEvent records one dropped packet.
type DropEvent struct {
	// At is the time of the drop, since the network was created; Time is
	// the same instant on the wall clock.
	At    time.Duration `json:"at_ns"`
	Time  time.Time     `json:"time"`
	Flow  Flow          `json:"flow"`
	Cause DropCause     `json:"cause"`
	// Size is the packet's IP length, Payload its transport payload
	// (the UDP datagram's data, or the TCP segment's data).
	Size    int `json:"size"`
	Payload int `json:"payload"`
	// For a TCP segment with data whose flow's SYN was seen, [Start, End)
	// is the range of stream bytes it carried, counted from 0 at the first
	// byte after the SYN.
	Start     uint64 `json:"start"`
	End       uint64 `json:"end"`
	HaveRange bool   `json:"have_range"`
	SYN       bool   `json:"syn,omitempty"`
	FIN       bool   `json:"fin,omitempty"`
}

type flowState struct {
	// Touched by every packet when it reaches the link: first, in one
	// cache line (a fan-out to 10,000 flows misses the cache on every
	// flow's state). The delay line does not touch it: a flow's
	// delivered count is worked out when a snapshot is taken, as
	// delivered + delayed less what is still in the delay line.
	offered  Counter
	delayed  Counter // put in the delay line (since the last reset, plus what was in it then)
	dataPkts int
	isn      uint32
	haveISN  bool
	// Touched by drops, inline deliveries and snapshots only.
	delivered Counter // delivered at once, without the delay line
	flow      Flow
	dropped   DropCounts
}

// stats returns the flow's counters; inHeap is what of it is still in the
// delay line.
func (f *flowState) stats(inHeap Counter) FlowStats {
	del := f.delivered
	del.Packets += f.delayed.Packets - inHeap.Packets
	del.Bytes += f.delayed.Bytes - inHeap.Bytes
	return FlowStats{Flow: f.flow, Offered: f.offered, Delivered: del, Dropped: f.dropped, ISN: f.isn, HaveISN: f.haveISN}
}

// inHeapLocked counts, per flow, the packets still in the delay line.
func (d *Direction) inHeapLocked() map[*flowState]Counter {
	m := make(map[*flowState]Counter)
	for i := range d.heap {
		if s := &d.heap[i]; s.fs != nil {
			c := m[s.fs]
			c.add(s.size)
			m[s.fs] = c
		}
	}
	return m
}

// scheduled is a packet waiting in the delay line.
type scheduled struct {
	due  int64
	seq  uint64
	v    *buffer.View
	size int
	fs   *flowState
}

// Direction is one direction of a link: it owns the loss, queue and delay
// state and the counters of packets going from one host to another.
type Direction struct {
	n    *Network
	from *Host
	to   *Host
	wake chan struct{}

	mu         sync.Mutex
	prof       *compiledProfile
	profStart  int64
	rng        *rand.Rand
	geBad      bool
	busyUntil  int64
	inQueue    []queued // packets in the rate limiter, oldest first, from qHead
	qHead      int
	rateIn     Counter // packets accepted by the rate limiter
	lastDue    int64
	seq        uint64
	heap       []scheduled
	delivering bool
	stats      DirectionStats
	flows      map[flowKey]*flowState
}

func newDirection(n *Network, from, to *Host, p *compiledProfile) *Direction {
	h := fnv.New64a()
	h.Write(from.addr.AsSlice())
	h.Write(to.addr.AsSlice())
	d := &Direction{
		n:     n,
		from:  from,
		to:    to,
		wake:  make(chan struct{}, 1),
		prof:  p,
		rng:   rand.New(rand.NewPCG(n.cfg.Seed, h.Sum64())),
		flows: make(map[flowKey]*flowState),
	}
	d.stats.From, d.stats.To = from.addr, to.addr
	d.profStart = n.now()
	return d
}

// From returns the sending host's address.
func (d *Direction) From() netip.Addr { return d.from.addr }

// To returns the receiving host's address.
func (d *Direction) To() netip.Addr { return d.to.addr }

// SetProfile replaces the profile while traffic flows. Packets already
// scheduled keep their delivery times; the loss model's state, the queue and
// the random sequence carry over. Blackhole periods restart from now.
func (d *Direction) SetProfile(p LinkProfile) error {
	c, err := p.compile()
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.prof = c
	d.profStart = d.n.now()
	d.mu.Unlock()
	return nil
}

// Profile returns the current profile.
func (d *Direction) Profile() LinkProfile {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.prof.LinkProfile
}

// Stats returns a snapshot of the direction's counters.
func (d *Direction) Stats() DirectionStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.stats
	st.InFlight = len(d.heap)
	now := d.n.now()
	st.At = time.Duration(now)
	st.RateSent = d.rateIn
	for _, q := range d.inQueue[d.qHead:] {
		if q.finish > now {
			st.RateSent.Packets--
			st.RateSent.Bytes -= uint64(q.size)
		}
	}
	if d.busyUntil > 0 && now > d.busyUntil && d.prof.Rate > 0 {
		st.RateIdle += time.Duration(now - d.busyUntil)
	}
	return st
}

// queued is a packet in the rate limiter.
type queued struct {
	finish int64
	size   int
}

// Flows returns a snapshot of the per-flow counters, in no particular order.
func (d *Direction) Flows() []FlowStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]FlowStats, 0, len(d.flows))
	inHeap := d.inHeapLocked()
	for _, f := range d.flows {
		out = append(out, f.stats(inHeap[f]))
	}
	return out
}

// FlowStats returns the counters of one flow, and false if the link has not
// seen it.
func (d *Direction) FlowStats(f Flow) (FlowStats, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fs, ok := d.flows[keyOf(f)]
	if !ok {
		return FlowStats{}, false
	}
	var inHeap Counter
	for i := range d.heap {
		if s := &d.heap[i]; s.fs == fs {
			inHeap.add(s.size)
		}
	}
	return fs.stats(inHeap), true
}

// ResetStats zeroes the direction's and its flows' counters (for example
// after a warm-up). Flows keep their ISN and data packet numbering.
func (d *Direction) ResetStats() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats = DirectionStats{From: d.stats.From, To: d.stats.To}
	d.rateIn = Counter{}
	for _, q := range d.inQueue[d.qHead:] {
		d.rateIn.add(q.size)
	}
	inHeap := d.inHeapLocked()
	for _, f := range d.flows {
		// What is in the delay line now counts as delivered when it is.
		f.offered, f.delivered, f.dropped, f.delayed = Counter{}, Counter{}, DropCounts{}, inHeap[f]
	}
}

// send runs a batch of packets from d.from through the link model. Packets
// due at once are delivered by the caller's goroutine; the rest go to the
// delay line. scratch is reused between calls by the (single) caller.
func (d *Direction) send(views []*buffer.View, scratch []*buffer.View) []*buffer.View {
	return d.sendMode(views, scratch, true)
}

// sendQueued is send for callers inside a gVisor stack: every packet goes
// to the delay line, even one due at once (it is then delivered by the
// delay line's goroutine, woken for it).
func (d *Direction) sendQueued(views []*buffer.View) {
	d.sendMode(views, nil, false)
}

func (d *Direction) sendMode(views []*buffer.View, scratch []*buffer.View, inlineOK bool) []*buffer.View {
	now := d.n.now()
	inline := scratch[:0]
	wake := false
	d.mu.Lock()
	p := d.prof
	for _, v := range views {
		b := v.AsSlice()
		pi, _ := parseIPv4(b)
		size := pi.size
		if size == 0 {
			size = len(b)
		}
		d.stats.Offered.add(size)
		var fs *flowState
		if pi.hasPorts {
			k := keyOf(pi.flow)
			fs = d.flows[k]
			if fs == nil {
				fs = &flowState{flow: pi.flow}
				d.flows[k] = fs
			}
			fs.offered.add(size)
			if pi.flow.Proto == TCP && pi.flags&tcpSYN != 0 {
				fs.isn, fs.haveISN = pi.seq, true
			}
		}
		dataIdx := 0
		if fs != nil && (pi.payload > 0 || pi.flow.Proto == UDP) {
			fs.dataPkts++
			dataIdx = fs.dataPkts
		}
		if cause, drop := d.decide(p, &pi, dataIdx, now); drop {
			d.drop(cause, &pi, fs, size, now)
			v.Release()
			continue
		}
		// Rate limiter: serialization behind a drop-tail queue.
		base := now
		if p.Rate > 0 {
			for d.qHead < len(d.inQueue) && d.inQueue[d.qHead].finish <= now {
				d.qHead++
			}
			if d.qHead == len(d.inQueue) {
				d.inQueue, d.qHead = d.inQueue[:0], 0
			} else if d.qHead > 256 && 2*d.qHead > len(d.inQueue) {
				k := copy(d.inQueue, d.inQueue[d.qHead:])
				d.inQueue, d.qHead = d.inQueue[:k], 0
			}
			if len(d.inQueue)-d.qHead >= p.queue {
				d.drop(DropQueue, &pi, fs, size, now)
				v.Release()
				continue
			}
			if d.busyUntil > 0 && now > d.busyUntil {
				d.stats.RateIdle += time.Duration(now - d.busyUntil)
			}
			if now > d.busyUntil {
				d.busyUntil = now // the gap is accounted for
			}
			start := max(now, d.busyUntil)
			finish := start + int64(uint64(size)*8*uint64(time.Second)/p.Rate)
			d.busyUntil = finish
			d.inQueue = append(d.inQueue, queued{finish, size})
			d.rateIn.add(size)
			if n := len(d.inQueue) - d.qHead; n > d.stats.QueuePeak {
				d.stats.QueuePeak = n
			}
			base = finish
		}
		due := base + int64(p.Delay)
		if p.Jitter > 0 {
			j := int64(p.Jitter)
			due += d.rng.Int64N(2*j+1) - j
			if due < base {
				due = base
			}
		}
		if p.Reorder {
			if due < d.lastDue {
				d.stats.Reordered++
			}
			d.lastDue = max(d.lastDue, due)
		} else {
			due = max(due, d.lastDue)
			d.lastDue = due
		}
		if inlineOK && due <= now && len(d.heap) == 0 && !d.delivering {
			d.stats.Delivered.add(size)
			if fs != nil {
				fs.delivered.add(size)
			}
			inline = append(inline, v)
			continue
		}
		d.seq++
		if len(d.heap) == 0 || due < d.heap[0].due {
			wake = true
		}
		if fs != nil {
			fs.delayed.add(size)
		}
		d.push(scheduled{due: due, seq: d.seq, v: v, size: size, fs: fs})
	}
	d.mu.Unlock()
	if len(inline) > 0 {
		d.to.deliver(inline)
		clear(inline)
	}
	if wake {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
	return inline
}

// decide applies blocking, blackholes, drop rules and the loss model.
func (d *Direction) decide(p *compiledProfile, pi *pktInfo, dataIdx int, now int64) (DropCause, bool) {
	if pi.hasPorts {
		if p.BlockUDP && pi.flow.Proto == UDP {
			return DropBlocked, true
		}
		if p.portBlocked(pi.flow.Src.Port()) || p.portBlocked(pi.flow.Dst.Port()) {
			return DropBlocked, true
		}
	}
	if bh := p.Blackhole; bh.Every > 0 && bh.Down > 0 {
		phase := (now - d.profStart) % int64(bh.Every)
		if phase >= int64(bh.Every-bh.Down) {
			return DropBlackhole, true
		}
	}
	if dataIdx > 0 {
		for _, r := range p.Drops {
			if r.Proto != 0 && r.Proto != pi.flow.Proto {
				continue
			}
			if r.Port != 0 && r.Port != pi.flow.Src.Port() && r.Port != pi.flow.Dst.Port() {
				continue
			}
			for _, i := range r.Packets {
				if i == dataIdx {
					return DropByRule, true
				}
			}
		}
	}
	if d.lose(&p.loss) {
		return DropLoss, true
	}
	return 0, false
}

// lose draws from the loss model. Gilbert-Elliott follows tc netem's
// gemodel: a packet's fate is drawn with the loss probability of the state
// the chain is in when the packet arrives, and the chain then moves on.
func (d *Direction) lose(l *compiledLoss) bool {
	if !l.ge {
		return l.bernoulli > 0 && d.rng.Float64() < l.bernoulli
	}
	if d.geBad {
		if d.rng.Float64() < l.p.R {
			d.geBad = false
		}
		return l.p.BadLoss > 0 && d.rng.Float64() < l.p.BadLoss
	}
	if d.rng.Float64() < l.p.P {
		d.geBad = true
	}
	return l.p.GoodLoss > 0 && d.rng.Float64() < l.p.GoodLoss
}

func (d *Direction) drop(cause DropCause, pi *pktInfo, fs *flowState, size int, now int64) {
	d.stats.Dropped.add(cause, size)
	if fs != nil {
		fs.dropped.add(cause, size)
	}
	ev := DropEvent{
		At:      time.Duration(now),
		Time:    d.n.start.Add(time.Duration(now)),
		Flow:    pi.flow,
		Cause:   cause,
		Size:    size,
		Payload: pi.payload,
	}
	if pi.flow.Proto == TCP {
		ev.SYN = pi.flags&tcpSYN != 0
		ev.FIN = pi.flags&tcpFIN != 0
		if fs != nil && fs.haveISN && pi.payload > 0 {
			ev.Start = uint64(pi.seq - fs.isn - 1)
			ev.End = ev.Start + uint64(pi.payload)
			ev.HaveRange = true
		}
	}
	d.n.recordDrop(ev)
}

// push and pop keep d.heap ordered by (due, seq).
func (d *Direction) push(s scheduled) {
	h := append(d.heap, s)
	i := len(h) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !h[i].before(&h[parent]) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
	d.heap = h
}

func (s *scheduled) before(o *scheduled) bool {
	return s.due < o.due || (s.due == o.due && s.seq < o.seq)
}

func (d *Direction) pop() scheduled {
	h := d.heap
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h[last] = scheduled{}
	h = h[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		m := l
		if r := l + 1; r < len(h) && h[r].before(&h[l]) {
			m = r
		}
		if !h[m].before(&h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	d.heap = h
	return top
}

// deliverySlack lets the delay line deliver a packet up to this much early
// when it is awake anyway, so packets spaced closely share one wake-up (and
// one batch into the receiving stack) instead of one timer each.
const deliverySlack = int64(100 * time.Microsecond)

// Go timers on Linux fire up to 1 ms late when the process is idle (the
// runtime's epoll wait has millisecond resolution) and within microseconds
// when it is busy. The delay line keeps a moving average of its timer's
// lateness, aims that much early, and delivers what is due within that
// margin: a packet arrives within about ±0.5 ms of its time when idle, and
// within deliverySlack when busy, with no systematic +0.5 ms bias.
const maxTimerLate = int64(time.Millisecond)

// run is the direction's delay line: one goroutine and one timer deliver
// every scheduled packet in time order, in batches of all packets due.
func (d *Direction) run() {
	defer d.n.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var batch []*buffer.View
	late := maxTimerLate / 2 // moving average of the timer's lateness
	for {
		d.mu.Lock()
		now := d.n.now()
		margin := max(deliverySlack, late)
		for len(d.heap) > 0 && d.heap[0].due <= now+margin {
			s := d.pop()
			d.stats.Delivered.add(s.size)
			batch = append(batch, s.v)
		}
		next := int64(-1)
		if len(d.heap) > 0 {
			next = d.heap[0].due
		}
		d.delivering = len(batch) > 0
		d.mu.Unlock()
		if len(batch) > 0 {
			d.to.deliver(batch)
			clear(batch)
			batch = batch[:0]
			d.mu.Lock()
			d.delivering = false
			d.mu.Unlock()
			select {
			case <-d.n.done:
				return
			default:
			}
			continue
		}
		if next < 0 {
			select {
			case <-d.wake:
			case <-d.n.done:
				return
			}
			continue
		}
		wait := next - now - late
		timer.Reset(time.Duration(wait))
		select {
		case <-timer.C:
			obs := min(max(d.n.now()-(now+wait), 0), maxTimerLate)
			late += (obs - late) / 8
		case <-d.wake:
		case <-d.n.done:
			return
		}
	}
}

// release frees every packet still in the delay line (after run stopped).
func (d *Direction) release() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.heap {
		s.v.Release()
		if s.fs != nil { // never delivered
			s.fs.delayed.Packets--
			s.fs.delayed.Bytes -= uint64(s.size)
		}
	}
	d.heap = nil
}
