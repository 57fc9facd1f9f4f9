package lab

import (
	"net/netip"
	"sort"
	"time"

	"github.com/wirelab/wirelab/netem"
)

type copyKey struct {
	session int32
	msg     int32
}

type span struct{ start, end uint64 }

// attribution decides, for a stalled copy, whether a packet carrying its own bytes was dropped
// (its delay is its own) or not (it waited behind another's loss: head of line). Method, in
// docs/METRICS.md: for TCP the copy's text is found in the byte stream of the recipient's
// connection (and of the sender's request) and compared with the stream byte ranges of dropped
// segments in the netem drop trace; QUIC's packets are encrypted, so for QUIC a drop on the
// recipient's or the sender's UDP flow between the send and the receipt counts as its own (an
// upper bound on own losses: a lower bound on head-of-line stalls).
type attribution struct {
	quic    bool
	t0      time.Time
	rec     *Recorder
	dropped map[netem.Flow][]span
	down    map[copyKey][]wireMark
	up      map[int32][]wireMark
	udp     map[netip.AddrPort][]time.Duration // drop times (since t0) by client address
	udpOf   []netip.AddrPort                   // session -> its UDP address
	qlost   map[copyKey]bool                   // QUIC: (session, seq) whose own packets were lost
}

func newAttribution(drops []netem.DropEvent, marks []wireMark, t0 time.Time, rec *Recorder, quic bool, udpOf []netip.AddrPort, sessionIDs []string, quicLost map[string][]uint64) *attribution {
	a := &attribution{quic: quic, t0: t0, rec: rec, dropped: map[netem.Flow][]span{},
		down: map[copyKey][]wireMark{}, up: map[int32][]wireMark{}, udp: map[netip.AddrPort][]time.Duration{}, udpOf: udpOf,
		qlost: map[copyKey]bool{}}
	for s, id := range sessionIDs {
		for _, q := range quicLost[id] {
			a.qlost[copyKey{int32(s), int32(q)}] = true
		}
	}
	for _, d := range drops {
		switch d.Flow.Proto {
		case netem.TCP:
			if d.HaveRange && d.End > d.Start {
				a.dropped[d.Flow] = append(a.dropped[d.Flow], span{d.Start, d.End})
			}
		case netem.UDP:
			at := d.Time.Sub(t0)
			a.udp[d.Flow.Src] = append(a.udp[d.Flow.Src], at)
			a.udp[d.Flow.Dst] = append(a.udp[d.Flow.Dst], at)
		}
	}
	for _, m := range marks {
		if m.up {
			a.up[m.msg] = append(a.up[m.msg], m)
		} else {
			k := copyKey{m.session, m.msg}
			a.down[k] = append(a.down[k], m)
		}
	}
	for _, ts := range a.udp {
		sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	}
	return a
}

func (a *attribution) hit(m wireMark) bool {
	for _, s := range a.dropped[m.flow] {
		if s.start < m.off+uint64(m.n) && m.off < s.end {
			return true
		}
	}
	return false
}

// ownLoss reports whether a packet carrying copy c (received by session s) was dropped.
func (a *attribution) ownLoss(s int, c copyRec) bool {
	m := a.rec.msgs[c.msg]
	down := a.down[copyKey{int32(s), c.msg}]
	if len(down) == 0 && (a.quic || a.udpAt(s).IsValid()) {
		// Not seen in any TCP stream: it came over QUIC (a wt transport, or auto on wt-uni).
		if a.qlost[copyKey{int32(s), int32(c.seq)}] {
			return true // a packet carrying it to the recipient was lost
		}
		// Upstream: the sender's request crossed its own UDP flow before the server took it.
		from, to := m.At, c.accepted
		if to <= from {
			to = c.recv
		}
		ts := a.udp[a.udpAt(m.Sender)]
		i := sort.Search(len(ts), func(i int) bool { return ts[i] >= from })
		return i < len(ts) && ts[i] <= to
	}
	if len(down) == 0 {
		return true // not seen on the wire (cannot tell): not counted as head of line
	}
	for _, w := range down {
		if a.hit(w) {
			return true
		}
	}
	for _, w := range a.up[c.msg] {
		if a.hit(w) {
			return true
		}
	}
	return false
}

func (a *attribution) udpAt(s int) netip.AddrPort {
	if s < len(a.udpOf) {
		return a.udpOf[s]
	}
	return netip.AddrPort{}
}
