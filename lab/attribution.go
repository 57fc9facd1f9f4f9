package lab

import (
	"net/netip"
	"sort"
	"strconv"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/netem"
)

type copyKey struct {
	session int32
	msg     int32
}

type span struct{ start, end uint64 }

// attribution decides, for a stalled copy, whether a packet carrying its own bytes was dropped
// (its delay is its own) or not (it waited behind another's loss: head of line), and in which
// direction: upstream (the sender's command on its way to the server) or downstream (the copy on
// its way to the recipient). Method, in docs/METRICS.md: for TCP the copy's text is found in the
// byte stream of the recipient's connection and of the sender's request and compared with the
// stream byte ranges of dropped segments in the netem drop trace. QUIC's packets are encrypted, so
// for QUIC the endpoints' own quic-go traces say which messages a lost packet carried: the
// server's downstream (quicLost: session id -> seqs) and the clients' upstream (cmdLost: session
// id -> cids, the lab's cid being "m<message index>"). A QUIC session without a client trace
// (auto on wt-uni) falls back to netem's trace upstream: a drop on the sender's UDP flow between
// the send and the server's acceptance counts as its own (an upper bound on own losses).
type attribution struct {
	quic    bool
	t0      time.Time
	rec     *Recorder
	dropped map[netem.Flow][]span
	down    map[copyKey][]wireMark
	up      map[int32][]wireMark
	udp     map[netip.AddrPort][]time.Duration // drop times (since t0) by client address
	udpOf   []netip.AddrPort                   // session -> its UDP address
	qlost   map[copyKey]bool                   // QUIC downstream: (session, seq) whose own packets were lost
	qup     map[copyKey]bool                   // QUIC upstream: (sender session, message) whose command's packets were lost
	traced  []bool                             // session -> its QUIC client recorded its upstream losses
}

// lossDirs says in which direction a copy's own bytes were dropped.
type lossDirs struct{ up, down bool }

func (d lossDirs) any() bool { return d.up || d.down }

// CID is the cid the lab gives message i's command, so that a client's upstream loss trace names
// the message.
func CID(i int) chat.CID { return chat.StringCID("m" + strconv.Itoa(i)) }

func msgOfCID(c chat.CID) (int, bool) {
	s := string(c)
	if len(s) < 4 || s[0] != '"' || s[1] != 'm' || s[len(s)-1] != '"' {
		return 0, false
	}
	i, err := strconv.Atoi(s[2 : len(s)-1])
	return i, err == nil
}

func newAttribution(drops []netem.DropEvent, marks []wireMark, t0 time.Time, rec *Recorder, quic bool, udpOf []netip.AddrPort,
	sessionIDs []string, quicLost map[string][]uint64, cmdLost map[string][]chat.CID, traced []bool) *attribution {
	a := &attribution{quic: quic, t0: t0, rec: rec, dropped: map[netem.Flow][]span{},
		down: map[copyKey][]wireMark{}, up: map[int32][]wireMark{}, udp: map[netip.AddrPort][]time.Duration{}, udpOf: udpOf,
		qlost: map[copyKey]bool{}, qup: map[copyKey]bool{}, traced: traced}
	for s, id := range sessionIDs {
		for _, q := range quicLost[id] {
			a.qlost[copyKey{int32(s), int32(q)}] = true
		}
		for _, c := range cmdLost[id] {
			if i, ok := msgOfCID(c); ok {
				a.qup[copyKey{int32(s), int32(i)}] = true
			}
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

// ownLoss reports in which directions a packet carrying copy c (received by session s) was
// dropped; none means the copy waited behind another's loss.
func (a *attribution) ownLoss(s int, c copyRec) lossDirs {
	m := a.rec.msgs[c.msg]
	down := a.down[copyKey{int32(s), c.msg}]
	if len(down) == 0 && (a.quic || a.udpAt(s).IsValid()) {
		// Not seen in any TCP stream: it came over QUIC (a wt transport, or auto on wt-uni).
		d := lossDirs{down: a.qlost[copyKey{int32(s), int32(c.seq)}]}
		if a.isTraced(m.Sender) {
			d.up = a.qup[copyKey{int32(m.Sender), c.msg}]
			return d
		}
		// Upstream, untraced: the sender's command crossed its own UDP flow before the server
		// took it.
		from, to := m.At, c.accepted
		if to <= from {
			to = c.recv
		}
		ts := a.udp[a.udpAt(m.Sender)]
		i := sort.Search(len(ts), func(i int) bool { return ts[i] >= from })
		d.up = i < len(ts) && ts[i] <= to
		return d
	}
	if len(down) == 0 {
		return lossDirs{down: true} // not seen on the wire (cannot tell): not counted as head of line
	}
	var d lossDirs
	for _, w := range down {
		if a.hit(w) {
			d.down = true
			break
		}
	}
	for _, w := range a.up[c.msg] {
		if a.hit(w) {
			d.up = true
			break
		}
	}
	return d
}

func (a *attribution) isTraced(s int) bool { return s < len(a.traced) && a.traced[s] }

func (a *attribution) udpAt(s int) netip.AddrPort {
	if s < len(a.udpOf) {
		return a.udpOf[s]
	}
	return netip.AddrPort{}
}
