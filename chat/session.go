package chat

import (
	"context"
	"sync"
	"sync/atomic"
)

// Session is one connection of a user: one browser tab. It owns an outbox of everything sent to
// it, numbered by seq (one more per envelope), so a client can come back with after=N and get
// the rest. A session outlives its connections: a transport attaches a Cursor to read from it,
// and a new attachment (a reconnect, an upgrade) replaces the old one.
type Session struct {
	id   string
	user string
	hub  *Hub

	lastHeard atomic.Int64 // hub clock (unix ns) of the last thing heard from the client

	memb     sync.Mutex // serialises join, leave and expiry, so that the rooms agree everywhere
	appendMu sync.Mutex // with a SharedStore: holds seq order from the store's commit to the outbox
	mu       sync.Mutex
	seq      uint64 // seq of the newest outbox entry
	out      ring
	rooms    map[string]struct{}
	cids     map[CID]okReply // answers to recent commands, for retries
	cidOrder []CID
	inflight map[CID]chan struct{}
	cur      *Cursor
	lastPing int64
	closed   bool
	moved    bool // closed here because another node claimed it: it lives on there

	// who answers: a token bucket in bytes (Limits.WhoBurst, refilled at Limits.WhoRate)
	whoTokens int64
	whoAt     int64 // hub clock of the last refill
}

// okReply is a remembered ok: what a retry of the command gets again.
type okReply struct {
	seq  uint64
	id   string // say, dm
	room string // join, leave
}

// goneLocked is the error for using a closed session: expired, or moved to another node (then
// the client tries again and reaches it where it is).
func (s *Session) goneLocked() *Error {
	if s.moved {
		return errMoved()
	}
	return errExpired()
}

func errMoved() *Error {
	return Errorf(CodeUnavailable, "the session moved to another server node; try again")
}

// ID is the session id: 128 random bits in hex. It is a bearer credential: never log it.
func (s *Session) ID() string { return s.id }

// User is the session's user.
func (s *Session) User() string { return s.user }

// Touch records that the client was heard from (any request, any envelope).
func (s *Session) Touch() { s.lastHeard.Store(s.hub.clock.Load()) }

// Rooms returns the rooms the session is in.
func (s *Session) Rooms() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := make([]string, 0, len(s.rooms))
	for k := range s.rooms {
		r = append(r, k)
	}
	return r
}

// member reports whether the session is in room.
func (s *Session) member(room string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.rooms[room]
	return ok
}

// topics are the broker topics the session hears: its user's and its rooms'.
func (s *Session) topics() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := make([]string, 0, len(s.rooms)+1)
	t = append(t, "user:"+s.user)
	for r := range s.rooms {
		t = append(t, "room:"+r)
	}
	return t
}

// Attached reports whether a connection is reading the session now.
func (s *Session) Attached() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur != nil
}

// LastSeq is the newest seq in the outbox.
func (s *Session) LastSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq
}

// ring is the outbox: a growable ring of the newest entries; their seqs are contiguous and end at
// Session.seq. It counts the bytes its entries cost (entryCost), for Config.OutboxBytes.
type ring struct {
	buf   []slot
	head  int // index of the oldest
	count int
	bytes int
}

// EntryOverhead is what an outbox entry costs besides its encoded envelope: the Payload that
// holds it (48 bytes) and the ring's slot (16). Config.OutboxBytes counts both.
const EntryOverhead = 64

// entryCost is what one entry counts against Config.OutboxBytes. A payload delivered to many
// sessions (a room message) is one allocation shared by all of them, but each outbox counts it
// in full: the budget bounds the memory a session can hold, whatever it shares.
func entryCost(p *Payload) int { return len(p.raw) + EntryOverhead }

type slot struct {
	p  *Payload
	at int64
}

func (r *ring) push(sl slot, max int) {
	if r.count == len(r.buf) {
		if len(r.buf) < max {
			n := max
			if 2*len(r.buf) < n {
				n = 2 * len(r.buf)
			}
			if n < 8 {
				n = 8
			}
			nb := make([]slot, n)
			for i := 0; i < r.count; i++ {
				nb[i] = r.buf[(r.head+i)%len(r.buf)]
			}
			r.buf, r.head = nb, 0
		} else {
			r.pop()
		}
	}
	r.buf[(r.head+r.count)%len(r.buf)] = sl
	r.count++
	r.bytes += entryCost(sl.p)
}

func (r *ring) pop() {
	r.bytes -= entryCost(r.buf[r.head].p)
	r.buf[r.head] = slot{}
	r.head = (r.head + 1) % len(r.buf)
	r.count--
}

func (r *ring) at(i int) slot { return r.buf[(r.head+i)%len(r.buf)] }

// first returns the oldest seq still held, given the newest.
func (r *ring) first(last uint64) uint64 { return last - uint64(r.count) + 1 }

// push appends p to the outbox and wakes the attached cursor; a cursor that lags more than the
// send queue allows is disconnected (it can resume).
func (s *Session) push(p *Payload) uint64 { return s.pushAt(p, 0) }

// pushAt is push with the seq the shared store gave the entry (0: the next one).
func (s *Session) pushAt(p *Payload, seq uint64) uint64 {
	cfg := &s.hub.cfg
	now := s.hub.clock.Load()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0
	}
	if seq != 0 && seq != s.seq+1 {
		if seq <= s.seq {
			s.mu.Unlock()
			return 0 // already here
		}
		// The store holds entries this node never saw (it cannot happen while one node
		// holds the session): start the outbox again; a reader gets a gap error.
		s.out = ring{}
		s.seq = seq - 1
	}
	s.seq++
	s.out.push(slot{p: p, at: now}, cfg.Outbox)
	s.trimLocked(now)
	s.trimBytesLocked()
	if c := s.cur; c != nil {
		if s.seq+1-c.next > uint64(cfg.SendQueue) {
			s.kickLocked(Errorf(CodeSlowConsumer, "the connection fell %d messages behind (limit %d); reconnect with after=%d to resume", s.seq+1-c.next, cfg.SendQueue, c.next-1))
		} else {
			c.signal()
		}
	}
	seq = s.seq
	s.mu.Unlock()
	return seq
}

func (s *Session) trimLocked(now int64) {
	age := int64(s.hub.cfg.OutboxAge)
	for s.out.count > 1 && now-s.out.at(0).at > age {
		s.out.pop()
	}
}

// trimBytesLocked drops the oldest entries while the outbox is over Config.OutboxBytes (the
// newest one always stays). An attached connection that has not been handed an entry that
// goes is a slow consumer: it is ended, and its client's resume gets a gap error.
func (s *Session) trimBytesLocked() {
	budget := s.hub.cfg.OutboxBytes
	for s.out.count > 1 && s.out.bytes > budget {
		if c := s.cur; c != nil && c.next <= s.out.first(s.seq) {
			s.kickLocked(Errorf(CodeSlowConsumer, "the connection fell so far behind that the outbox (%d bytes at most) let go of envelopes it had not been sent; reconnect with after=%d (a gap error says what is lost)", budget, c.next-1))
		}
		s.out.pop()
	}
}

// OutboxBytes is what the session's outbox counts against Config.OutboxBytes now: the encoded
// envelopes plus EntryOverhead each.
func (s *Session) OutboxBytes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.bytes
}

// kickLocked ends the attached cursor with err.
func (s *Session) kickLocked(err *Error) {
	if c := s.cur; c != nil {
		c.err = err
		s.cur = nil
		s.lastHeard.Store(s.hub.clock.Load())
		c.signal()
	}
}

// Cursor reads a session's outbox from a position: the one downstream of one connection.
type Cursor struct {
	s      *Session
	next   uint64 // next seq to hand out
	wake   chan struct{}
	err    *Error     // set when the cursor was ended (under s.mu)
	direct []Envelope // unsequenced envelopes for this connection (errors, gap notices)
	ping   bool
	pings  bool
}

// Batch is what Cursor.Next hands a transport to write.
type Batch struct {
	Entries []Entry    // outbox entries in seq order
	Direct  []Envelope // envelopes for this connection only, without seq; write them first
	Ping    bool       // a heartbeat is due: write {"type":"ping"}
}

// Empty reports whether the batch has nothing to write.
func (b *Batch) Empty() bool { return len(b.Entries) == 0 && len(b.Direct) == 0 && !b.Ping }

func (c *Cursor) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// AttachOptions say how a connection reads a session.
type AttachOptions struct {
	// After is the last seq the client has; it gets everything after it.
	After uint64
	// Heartbeat asks for pings (persistent transports) and holds the connection to the
	// heartbeat timeout.
	Heartbeat bool
}

// Attach makes a new cursor the session's one downstream, replacing (and ending, with code
// replaced) any earlier one. If entries after opt.After are no longer in the outbox, the cursor
// starts at the oldest one it has and its first batch carries a gap error saying so. An After
// beyond the newest seq is an error (bad_after).
func (s *Session) Attach(opt AttachOptions) (*Cursor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, s.goneLocked()
	}
	if opt.After > s.seq {
		return nil, Errorf(CodeBadAfter, "after=%d is beyond the newest seq of this session (%d)", opt.After, s.seq)
	}
	c := &Cursor{s: s, next: opt.After + 1, wake: make(chan struct{}, 1), pings: opt.Heartbeat}
	if first := s.out.first(s.seq); c.next < first {
		c.direct = append(c.direct, Envelope{Type: TypeError, Code: CodeGap, First: first,
			Error: gapText(c.next, first)})
		c.next = first
	}
	s.kickLocked(Errorf(CodeReplaced, "another connection took over this session"))
	s.cur = c
	s.lastPing = s.hub.clock.Load()
	s.lastHeard.Store(s.lastPing)
	if c.next <= s.seq || len(c.direct) > 0 {
		c.signal()
	}
	return c, nil
}

// appendGap appends a gap error. It is a function of its own so that the envelope is not part
// of Next's stack frame: a connection's writer waits in Next, and a small frame keeps its
// goroutine on the smallest stack (2 KiB instead of 4).
//
//go:noinline
func appendGap(direct []Envelope, want, first uint64) []Envelope {
	return append(direct, Envelope{Type: TypeError, Code: CodeGap, First: first, Error: gapText(want, first)})
}

func gapText(want, first uint64) string {
	return "messages " + utoa(want) + ".." + utoa(first-1) + " are no longer in the outbox; resuming at " + utoa(first)
}

// Next waits for something to write and returns it in dst's storage. It returns the cursor's end
// reason (an *Error: replaced, slow_consumer, heartbeat_timeout, expired, shutdown) once the
// cursor has been ended, and ctx.Err() when ctx is done.
func (c *Cursor) Next(ctx context.Context, dst []Entry) (Batch, error) {
	s := c.s
	if cap(dst) == 0 {
		dst = make([]Entry, 0, 64)
	}
	for {
		s.mu.Lock()
		if c.err != nil {
			err := c.err
			s.mu.Unlock()
			return Batch{}, err
		}
		var b Batch
		if len(c.direct) > 0 {
			b.Direct, c.direct = c.direct, nil
		}
		if c.next <= s.seq {
			first := s.out.first(s.seq)
			if c.next < first { // aged out while we waited
				b.Direct = appendGap(b.Direct, c.next, first)
				c.next = first
			}
			dst = appendEntries(dst[:0], &s.out, first, c.next, s.seq, cap(dst))
			c.next += uint64(len(dst))
			b.Entries = dst
		}
		if c.ping {
			c.ping = false
			b.Ping = true
		}
		s.mu.Unlock()
		if !b.Empty() {
			return b, nil
		}
		select {
		case <-ctx.Done():
			return Batch{}, ctx.Err()
		case <-c.wake:
		}
	}
}

// MaxDirect is how many unsequenced envelopes (answers to commands: errors; on WebTransport
// also the oks of commands sent again) may wait for a connection's writer. A connection whose
// client sends commands but does not read the answers is ended as a slow consumer beyond it.
const MaxDirect = 128

// Send queues an unsequenced envelope (an error for a command) on this connection only.
func (c *Cursor) Send(env Envelope) {
	s := c.s
	s.mu.Lock()
	switch {
	case c.err != nil:
	case len(c.direct) >= MaxDirect:
		if s.cur == c {
			s.kickLocked(Errorf(CodeSlowConsumer, "%d answers to commands were not read; reconnect with after=%d to resume", len(c.direct), c.next-1))
		}
	default:
		c.direct = append(c.direct, env)
		c.signal()
	}
	s.mu.Unlock()
}

// Position is the next seq the cursor will hand out, minus one: what the client has been given.
func (c *Cursor) Position() uint64 {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.next - 1
}

// Detach ends the cursor (the connection closed). The session stays, waiting for a resume,
// until its TTL.
func (c *Cursor) Detach() {
	s := c.s
	s.mu.Lock()
	if s.cur == c {
		s.cur = nil
		s.lastHeard.Store(s.hub.clock.Load())
	}
	if c.err == nil {
		c.err = Errorf(CodeReplaced, "detached")
	}
	s.mu.Unlock()
}

// Read returns up to max entries after seq after (and at most MaxBatchBytes of them plus one)
// without attaching (polling). It returns a gap error envelope first when some of them are gone.
func (s *Session) Read(after uint64, max int) ([]Envelope, []Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastHeard.Store(s.hub.clock.Load())
	if s.closed {
		return nil, nil, s.goneLocked()
	}
	if after > s.seq {
		return nil, nil, Errorf(CodeBadAfter, "after=%d is beyond the newest seq of this session (%d)", after, s.seq)
	}
	var direct []Envelope
	next := after + 1
	first := s.out.first(s.seq)
	if next < first {
		direct = append(direct, Envelope{Type: TypeError, Code: CodeGap, First: first, Error: gapText(next, first)})
		next = first
	}
	return direct, appendEntries(nil, &s.out, first, next, s.seq, max), nil
}

// MaxBatchBytes bounds one batch (Cursor.Next, Session.Read): entries are added while the
// encoded envelopes come to less than this, so a batch is at most MaxBatchBytes plus one
// envelope. A poll answer or a stream's write is one batch; the client asks again, or the
// stream goes on, from where it got to.
const MaxBatchBytes = 256 << 10

// appendEntries appends the outbox entries from seq next to last (at most max, at most
// MaxBatchBytes plus one) to dst; first is the oldest seq the outbox holds.
func appendEntries(dst []Entry, out *ring, first, next, last uint64, max int) []Entry {
	size := 0
	for q := next; q <= last && len(dst) < max && size < MaxBatchBytes; q++ {
		p := out.at(int(q - first)).p
		size += len(p.raw)
		dst = append(dst, Entry{Seq: q, P: p})
	}
	return dst
}

func utoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}
