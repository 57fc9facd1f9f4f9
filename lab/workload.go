package lab

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/wirelab/wirelab/scenarios"
)

// Kind is what a scheduled message is.
type Kind uint8

const (
	KindRoom Kind = iota // to the sender's room
	KindDM               // to another user (every tab), copied to the sender's tabs
)

// Message is one scheduled message of the open-loop workload.
type Message struct {
	Index  int
	At     time.Duration // scheduled send time, from the start of warmup
	Sender int           // session index
	Kind   Kind
	Room   string
	To     int // user index, for a DM
}

// Population is who takes part: users × tabs sessions, user u in room u mod rooms.
type Population struct {
	Users, Tabs, Rooms int
}

// UserName is user u's id.
func UserName(u int) string { return fmt.Sprintf("u%05d", u) }

// RoomName is room r's id ("lobby" when the scenario has no rooms).
func (p Population) RoomName(r int) string {
	if p.Rooms == 0 {
		return "lobby"
	}
	return fmt.Sprintf("r%03d", r)
}

// RoomOf is the room user u joins.
func (p Population) RoomOf(u int) string {
	if p.Rooms == 0 {
		return "lobby"
	}
	return p.RoomName(u % p.Rooms)
}

// Sessions is the number of sessions.
func (p Population) Sessions() int { return p.Users * p.Tabs }

// UserOf is the user of session s.
func (p Population) UserOf(s int) int { return s / p.Tabs }

// Recipients appends the sessions that must receive m: every session in its room (the
// sender's own included), or every tab of the DM's recipient and of its sender.
func (p Population) Recipients(m Message, dst []int) []int {
	switch m.Kind {
	case KindDM:
		from := p.UserOf(m.Sender)
		for t := 0; t < p.Tabs; t++ {
			dst = append(dst, m.To*p.Tabs+t)
		}
		if from != m.To {
			for t := 0; t < p.Tabs; t++ {
				dst = append(dst, from*p.Tabs+t)
			}
		}
	default:
		for u := 0; u < p.Users; u++ {
			if p.RoomOf(u) == m.Room {
				for t := 0; t < p.Tabs; t++ {
					dst = append(dst, u*p.Tabs+t)
				}
			}
		}
	}
	return dst
}

// Schedule draws the open-loop workload of a scenario for its whole run, warmup included: a
// Poisson process at the scenario's rate (with sender: turns, evenly spaced sends by every
// session in turn), each message's sender, kind and target drawn from the same seeded generator,
// so a seed always gives the same offered load.
func Schedule(sc *scenarios.Scenario, seed uint64) []Message {
	pop := Population{Users: sc.Users, Tabs: sc.Tabs, Rooms: sc.Rooms}
	rng := rand.New(rand.NewPCG(seed, 0x5eed_0f_10ad))
	total := sc.Warmup + sc.Duration
	var out []Message
	t := 0.0
	turns := sc.Workload.Sender == "turns"
	if turns { // evenly spaced, from a seeded phase within one gap
		t = rng.Float64() / sc.Workload.Rate
	}
	for {
		if turns && len(out) > 0 {
			t += 1 / sc.Workload.Rate
		} else if !turns {
			t += rng.ExpFloat64() / sc.Workload.Rate
		}
		at := time.Duration(t * float64(time.Second))
		if at >= total {
			break
		}
		m := Message{Index: len(out), At: at}
		switch sc.Workload.Sender {
		case "one":
			m.Sender = 0
		case "turns":
			m.Sender = len(out) % pop.Sessions()
		default:
			m.Sender = rng.IntN(pop.Sessions())
		}
		from := pop.UserOf(m.Sender)
		if pop.Users > 1 && rng.Float64() < sc.Workload.DMP {
			m.Kind = KindDM
			m.To = rng.IntN(pop.Users - 1)
			if m.To >= from {
				m.To++
			}
		} else {
			m.Kind = KindRoom
			m.Room = pop.RoomOf(from)
		}
		out = append(out, m)
	}
	return out
}

// Text is the text of message i, size bytes long: "m<i>." then padding. Receivers read i back
// with ParseText.
func Text(i, size int) string {
	head := "m" + strconv.Itoa(i) + "."
	if len(head) >= size {
		return head
	}
	b := make([]byte, size)
	copy(b, head)
	for j := len(head); j < size; j++ {
		b[j] = 'a' + byte(j%26)
	}
	return string(b)
}

// ParseText returns the message index a text carries, or -1.
func ParseText(s string) int {
	if len(s) < 3 || s[0] != 'm' {
		return -1
	}
	n := 0
	for i := 1; i < len(s) && i < 12; i++ {
		c := s[i]
		if c == '.' {
			if i == 1 {
				return -1
			}
			return n
		}
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
		if n > math.MaxInt32 {
			return -1
		}
	}
	return -1
}
