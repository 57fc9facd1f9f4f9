package lab

import (
	"math/rand/v2"
	"testing"
	"time"
)

// synthRun builds the copies of a synthetic run: sessions sessions in rooms rooms (session s in
// room s % rooms), a message every gap from sender (i*7) % sessions to that sender's room,
// delivered 45 ms after it was sent; late(i, s) says how late (beyond that) message i arrives at
// session s and whether its own bytes were lost. A copy later than 100 ms is a stall.
type synthRun struct {
	sessions, rooms, msgs int
	gap                   time.Duration
	late                  func(i, s int) (extra time.Duration, own bool)
}

func (r synthRun) arrivals() []arrival {
	var as []arrival
	for i := 0; i < r.msgs; i++ {
		sender := (i * 7) % r.sessions
		at := time.Duration(i) * r.gap
		for s := 0; s < r.sessions; s++ {
			if s%r.rooms != sender%r.rooms {
				continue
			}
			lat := 45 * time.Millisecond
			var own bool
			if r.late != nil {
				extra, o := r.late(i, s)
				lat += extra
				own = o
			}
			as = append(as, arrival{session: int32(s), msg: int32(i), sender: int32(sender), recv: at + lat,
				stall: lat > 100*time.Millisecond, own: own})
		}
	}
	return as
}

type tally struct{ own, hol, system int }

func classify(t *testing.T, as []arrival) tally {
	t.Helper()
	sys := systemStalls(as, false)
	var n tally
	for i, a := range as {
		switch {
		case sys[i] && !a.free():
			t.Fatalf("copy %+v: a system stall that is not a free stall", a)
		case !a.stall:
		case a.own:
			n.own++
		case sys[i]:
			n.system++
		default:
			n.hol++
		}
	}
	return n
}

// A 150 ms freeze of the server: every message sent in it reaches all its recipients late,
// together, in both rooms, from many senders: system stalls, all of them.
func TestSystemStallsFreeze(t *testing.T) {
	freeze := func(i, s int) (time.Duration, bool) {
		at := time.Duration(i) * 10 * time.Millisecond
		if at >= time.Second && at < 1150*time.Millisecond {
			return 1150*time.Millisecond - at + 10*time.Millisecond, false // all out together at the end
		}
		return 0, false
	}
	n := classify(t, synthRun{sessions: 40, rooms: 2, msgs: 300, gap: 10 * time.Millisecond, late: freeze}.arrivals())
	if n.system == 0 || n.hol != 0 || n.own != 0 {
		t.Errorf("a freeze across every session: %+v, want every stall system", n)
	}
	// The same burst on a lossy link: copies whose own bytes were dropped stay own.
	lossy := func(i, s int) (time.Duration, bool) {
		extra, _ := freeze(i, s)
		return extra, extra > 0 && s == 4
	}
	m := classify(t, synthRun{sessions: 40, rooms: 2, msgs: 300, gap: 10 * time.Millisecond, late: lossy}.arrivals())
	if m.own == 0 || m.own+m.system != n.system || m.hol != 0 {
		t.Errorf("a freeze with session 4's own losses: %+v, want session 4's own and the rest (%d) system", m, n.system-m.own)
	}
}

// Downstream head of line: session 5 lost a packet, and its next 300 ms of copies (from many
// senders) waited behind it; the other sessions were on time. Collateral, not system.
func TestSystemStallsOneSession(t *testing.T) {
	n := classify(t, synthRun{sessions: 40, rooms: 1, msgs: 300, gap: 10 * time.Millisecond, late: func(i, s int) (time.Duration, bool) {
		switch {
		case s != 5 || i < 100 || i >= 130:
			return 0, false
		case i == 100:
			return 250 * time.Millisecond, true
		default:
			return time.Duration(130-i) * 10 * time.Millisecond, false
		}
	}}.arrivals())
	if n.own != 1 || n.hol == 0 || n.system != 0 {
		t.Errorf("one session behind its own loss: %+v, want 1 own, the rest head-of-line, none system", n)
	}
}

// Upstream head of line: sender 14's command of message 82 was lost, and its next command
// (message 122, 400 ms later) waited behind it until the retransmission 500 ms after the first
// try: all its copies, in every session, are late together. Sessions 3 and 9 are in downstream
// head of line at the same time with other senders' messages. Collateral, not system: one sender
// behind its own connection's loss.
func TestSystemStallsOneSender(t *testing.T) {
	// The sender of message i is (i*7)%40: messages 82 and 122 are sender 14's.
	n := classify(t, synthRun{sessions: 40, rooms: 1, msgs: 300, gap: 10 * time.Millisecond, late: func(i, s int) (time.Duration, bool) {
		switch {
		case i == 82:
			return 500 * time.Millisecond, true // its own command was lost
		case i == 122: // sent at 1,220 ms, through just after 82's retransmission (1,320 ms)
			return 101 * time.Millisecond, false
		case (s == 3 || s == 9) && i >= 120 && i < 140:
			return 150 * time.Millisecond, false
		}
		return 0, false
	}}.arrivals())
	if n.system != 0 || n.own != 40 || n.hol != 40+2*19 { // 122's copies, and 19 others in sessions 3 and 9
		t.Errorf("one sender's upstream head of line: %+v, want 40 own, 78 head-of-line, none system", n)
	}
}

// Two senders' upstream losses in the same window: still not three senders.
func TestSystemStallsTwoSenders(t *testing.T) {
	n := classify(t, synthRun{sessions: 40, rooms: 1, msgs: 300, gap: 10 * time.Millisecond, late: func(i, s int) (time.Duration, bool) {
		if i == 150 || i == 151 {
			return 200 * time.Millisecond, false
		}
		return 0, false
	}}.arrivals())
	if n.system != 0 || n.hol != 80 {
		t.Errorf("two senders late together: %+v, want 80 head-of-line, none system", n)
	}
}

// Heavy independent head of line: every copy is a free stall with probability 0.1, in every
// session independently (a lossy link, no machine at fault). Not system.
func TestSystemStallsIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	n := classify(t, synthRun{sessions: 60, rooms: 3, msgs: 2000, gap: 10 * time.Millisecond, late: func(i, s int) (time.Duration, bool) {
		if rng.Float64() < 0.1 {
			return 100 * time.Millisecond, false
		}
		return 0, false
	}}.arrivals())
	if n.system != 0 || n.hol < 3000 {
		t.Errorf("independent head of line in 10%% of copies: %+v, want all head-of-line", n)
	}
}

// make bench's shape under heavy head of line: rooms of 6 sessions, about a thousand messages a
// second, a third of the copies in head of line independently (long polling at 5% loss had a
// quarter over the run, more in its busier stretches). Three of a message's six copies are then
// free stalls by chance for one message in three: that is the run's rate, not the machine.
func TestSystemStallsSmallRoomsHeavyHOL(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	n := classify(t, synthRun{sessions: 240, rooms: 40, msgs: 9000, gap: time.Millisecond, late: func(i, s int) (time.Duration, bool) {
		if rng.Float64() < 0.35 {
			return 100 * time.Millisecond, false
		}
		return 0, false
	}}.arrivals())
	if n.system != 0 || n.hol < 10000 {
		t.Errorf("independent head of line in 35%% of copies, rooms of 6: %+v, want all head-of-line", n)
	}
}

// Many upstream losses at once in a busy window (1,000 messages a second from 1,000 senders, one
// room each): 3 wide messages of 100 in a window are not a quarter of them.
func TestSystemStallsBusyWindow(t *testing.T) {
	n := classify(t, synthRun{sessions: 1000, rooms: 100, msgs: 1000, gap: time.Millisecond, late: func(i, s int) (time.Duration, bool) {
		if i == 500 || i == 520 || i == 540 {
			return 150 * time.Millisecond, false
		}
		return 0, false
	}}.arrivals())
	if n.system != 0 || n.hol != 30 {
		t.Errorf("three upstream losses among 100 messages of a window: %+v, want 30 head-of-line, none system", n)
	}
}

// On a link that lost nothing, no stall can be head of line: even one message late in every
// session (one sender, which the window rule leaves alone) is a system stall.
func TestSystemStallsLossless(t *testing.T) {
	as := synthRun{sessions: 40, rooms: 1, msgs: 300, gap: 10 * time.Millisecond, late: func(i, s int) (time.Duration, bool) {
		if i == 150 {
			return 150 * time.Millisecond, false
		}
		return 0, false
	}}.arrivals()
	if n := classify(t, as); n.system != 0 || n.hol != 40 {
		t.Errorf("one message late everywhere, with losses on the link: %+v, want 40 head-of-line", n)
	}
	sys := systemStalls(as, true)
	n := 0
	for i, a := range as {
		if sys[i] != a.free() {
			t.Fatalf("lossless: copy %+v system %v", a, sys[i])
		}
		if sys[i] {
			n++
		}
	}
	if n != 40 {
		t.Errorf("lossless: %d system stalls, want 40", n)
	}
}

func TestParsePause(t *testing.T) {
	p, err := parsePause("run=2,at=1s,for=150ms")
	if err != nil || p.run != 2 || p.at != time.Second || p.dur != 150*time.Millisecond {
		t.Fatalf("parsePause: %+v %v", p, err)
	}
	if p.forRun(1) != nil || p.forRun(2) != p {
		t.Errorf("run=2 pauses run 2 only")
	}
	if p, err := parsePause("at=0s,for=1s"); err != nil || p.forRun(5) == nil {
		t.Errorf("without run= every run is paused: %+v %v", p, err)
	}
	for _, bad := range []string{"x", "run=0,for=1s", "for=0s", "at=1s", "run=1,at=1s,for=1s,hold=3"} {
		if _, err := parsePause(bad); err == nil {
			t.Errorf("parsePause(%q) accepted", bad)
		}
	}
	if p, err := parsePause(""); p != nil || err != nil {
		t.Errorf("empty: %+v %v", p, err)
	}
}
