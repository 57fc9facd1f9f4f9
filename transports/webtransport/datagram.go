package webtransport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/wirelab/wirelab/chat"
)

// Datagram framing (wt-datagram).
//
// Downstream, a datagram is exactly one outbox envelope, the same JSON as on the streams, with
// its seq and without a newline. Upstream, a datagram is an acknowledgement:
//
//	{"type":"ack","upto":N,"seqs":[A,B,...]}
//
// upto (optional) acknowledges every seq up to N (the client's newest seq without a hole);
// seqs (optional, at most MaxAckSeqs) acknowledges those seqs. {"type":"ack","seq":N} is the
// one-seq form. The client acknowledges every envelope datagram it receives, duplicates too
// (its first ack may have been lost); acks are cumulative enough that a lost ack costs at most
// one retransmission. The same envelopes are accepted on the control stream as NDJSON lines.

// MaxAckSeqs is the most seqs one ack may list.
const MaxAckSeqs = 128

// Ack is a parsed ack.
type Ack struct {
	Upto uint64
	Seqs []uint64
}

// ErrNotAck is returned by ParseAck for a datagram that is not an ack.
var ErrNotAck = errors.New(`webtransport: datagram is not an ack ({"type":"ack","upto":N,"seqs":[...]})`)

// ParseAck decodes an ack datagram.
func ParseAck(b []byte) (Ack, error) {
	var a struct {
		Type string   `json:"type"`
		Seq  uint64   `json:"seq"`
		Upto uint64   `json:"upto"`
		Seqs []uint64 `json:"seqs"`
	}
	if len(b) > 64<<10 {
		return Ack{}, chat.Errorf(chat.CodeTooLarge, "ack datagram is %d bytes", len(b))
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return Ack{}, chat.Errorf(chat.CodeBadJSON, "ack datagram is not a JSON object: %v", err)
	}
	if a.Type != chat.TypeAck {
		return Ack{}, ErrNotAck
	}
	if len(a.Seqs) > MaxAckSeqs {
		return Ack{}, chat.Errorf(chat.CodeTooLarge, "ack lists %d seqs, the limit is %d", len(a.Seqs), MaxAckSeqs)
	}
	if a.Seq > 0 {
		a.Seqs = append(a.Seqs, a.Seq)
	}
	if a.Upto == 0 && len(a.Seqs) == 0 {
		return Ack{}, chat.Errorf(chat.CodeMissingField, "ack needs upto or seqs")
	}
	return Ack{Upto: a.Upto, Seqs: a.Seqs}, nil
}

// AppendAck appends an ack datagram; seqs beyond MaxAckSeqs are not written.
func AppendAck(b []byte, upto uint64, seqs []uint64) []byte {
	b = append(b, `{"type":"ack"`...)
	if upto > 0 {
		b = append(b, `,"upto":`...)
		b = strconv.AppendUint(b, upto, 10)
	}
	if len(seqs) > 0 {
		b = append(b, `,"seqs":[`...)
		for i, s := range seqs {
			if i == MaxAckSeqs {
				break
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, s, 10)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// parseDatagramEnvelope decodes a downstream datagram: one server envelope with a seq.
func parseDatagramEnvelope(b []byte) (chat.Envelope, error) {
	var env chat.Envelope
	if err := json.Unmarshal(bytes.TrimSpace(b), &env); err != nil {
		return env, chat.Errorf(chat.CodeBadJSON, "datagram is not an envelope: %v", err)
	}
	if env.Type == "" {
		return env, chat.Errorf(chat.CodeMissingField, "datagram envelope has no type")
	}
	return env, nil
}

// Retransmission (server side of wt-datagram).

const (
	// Window is the most unacknowledged datagrams one session keeps in flight; the writer waits
	// for acks beyond it.
	Window = 256
	// minRTO and maxRTO bound the retransmission timeout.
	minRTO = 20 * time.Millisecond
	maxRTO = time.Second
	// ackDelay is what the client may take to send its ack.
	ackDelay = 5 * time.Millisecond
)

// rto is the retransmission timeout for an RTT estimate: SRTT + max(2 RTTVAR, 5 ms) + the
// client's ack delay, within [minRTO, maxRTO]. It is tighter than TCP's (4 RTTVAR): a spurious
// resend costs one duplicate datagram, a late one costs latency.
func rto(srtt, rttvar time.Duration) time.Duration {
	v := 2 * rttvar
	if v < 5*time.Millisecond {
		v = 5 * time.Millisecond
	}
	r := srtt + v + ackDelay
	return min(max(r, minRTO), maxRTO)
}

type inflight struct {
	e     chat.Entry
	due   time.Time
	tries int
	fast  bool // sent again early already, because later seqs were acked
}

// reorderThreshold: a datagram is taken as lost, and sent again before its timer runs out, once
// a datagram sent this many seqs after it has been acked. QUIC's packet threshold (RFC 9002) is
// 3 to allow for reordering; datagrams of one session leave in seq order on one path and the
// client acks in the order it receives, so 1 suffices here, and a spurious resend costs only a
// duplicate that the client drops.
const reorderThreshold = 1

// unacked holds one session's datagrams until they are acked.
type unacked struct {
	mu    sync.Mutex
	m     map[uint64]*inflight
	upto  uint64        // every seq up to it is acked
	top   uint64        // the largest seq acked
	space chan struct{} // signalled when an ack frees room
	added chan struct{} // signalled when an entry is added (the retransmit timer looks again)
}

func newUnacked() *unacked {
	return &unacked{m: make(map[uint64]*inflight), space: make(chan struct{}, 1), added: make(chan struct{}, 1)}
}

// add records e as sent now, waiting while the window is full.
func (u *unacked) add(ctx context.Context, e chat.Entry, now time.Time, rto time.Duration) error {
	for {
		u.mu.Lock()
		if e.Seq <= u.upto {
			u.mu.Unlock()
			return nil // acked already (a resumed connection's first entries)
		}
		if len(u.m) < Window {
			u.m[e.Seq] = &inflight{e: e, due: now.Add(rto)}
			u.mu.Unlock()
			signal(u.added)
			return nil
		}
		u.mu.Unlock()
		select {
		case <-u.space:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ack removes what a acknowledges, and marks for sending again at once the datagrams that
// later ones overtook by reorderThreshold.
func (u *unacked) ack(a Ack, now time.Time) {
	u.mu.Lock()
	n := len(u.m)
	if a.Upto > u.upto {
		if a.Upto-u.upto <= uint64(len(u.m)) {
			for s := u.upto + 1; s <= a.Upto; s++ {
				delete(u.m, s)
			}
		} else {
			for s := range u.m {
				if s <= a.Upto {
					delete(u.m, s)
				}
			}
		}
		u.upto = a.Upto
	}
	top := u.top
	for _, s := range a.Seqs {
		delete(u.m, s)
		top = max(top, s)
	}
	lost := false
	if top > u.top {
		u.top = top
		for s, f := range u.m {
			if s+reorderThreshold <= top && !f.fast {
				f.fast = true
				f.due = now
				lost = true
			}
		}
	}
	freed := len(u.m) < n
	u.mu.Unlock()
	if freed {
		signal(u.space)
	}
	if lost {
		signal(u.added) // the retransmitter looks at the timers again
	}
}

// due appends the entries whose timer has run out to dst, restarts their timers with
// exponential backoff, and returns when the next one runs out (zero if none is pending).
func (u *unacked) due(now time.Time, rto time.Duration, dst []chat.Entry) ([]chat.Entry, time.Time) {
	var next time.Time
	u.mu.Lock()
	for _, f := range u.m {
		if !f.due.After(now) {
			dst = append(dst, f.e)
			f.tries++
			f.due = now.Add(min(rto<<min(f.tries, 3), maxRTO))
		}
		if next.IsZero() || f.due.Before(next) {
			next = f.due
		}
	}
	u.mu.Unlock()
	return dst, next
}

// remove forgets seq (it went on a stream instead).
func (u *unacked) remove(seq uint64) {
	u.mu.Lock()
	delete(u.m, seq)
	u.mu.Unlock()
	signal(u.space)
}

func (u *unacked) len() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.m)
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(bytes.TrimSpace(b), v) }
