package chat

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// outboxCost is what s's outbox should count: every entry it holds, at its encoded size plus
// EntryOverhead.
func outboxCost(t *testing.T, s *Session) int {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for i := 0; i < s.out.count; i++ {
		n += s.out.at(i).p.Size() + EntryOverhead
	}
	return n
}

func TestOutboxBytes(t *testing.T) {
	const budget = 16 << 10
	h := newTestHub(t, Config{Outbox: 1024, SendQueue: 1024, OutboxBytes: budget})
	a := h.open("a")
	text := strings.Repeat("x", 1000)
	for i := range 40 {
		h.do(a, Envelope{Type: TypeDM, To: "a", Text: text, CID: StringCID("c" + strconv.Itoa(i))})
		if got, want := a.OutboxBytes(), outboxCost(t, a); got != want {
			t.Fatalf("after %d DMs the outbox counts %d bytes, its entries cost %d", i+1, got, want)
		}
		if got := a.OutboxBytes(); got > budget {
			t.Fatalf("after %d DMs the outbox holds %d bytes, over its budget of %d", i+1, got, budget)
		}
	}
	// 80 entries were queued (a msg and an ok per DM, after the lobby's member list); about
	// 16 KiB of them are left, and what went is announced as a gap, as for Outbox.
	direct, entries, err := a.Read(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	first := entries[0].Seq
	if first < 40 || entries[len(entries)-1].Seq != a.LastSeq() {
		t.Fatalf("the outbox holds seqs %d..%d of %d: the budget did not push the oldest out", first, entries[len(entries)-1].Seq, a.LastSeq())
	}
	if len(direct) != 1 || direct[0].Code != CodeGap || direct[0].First != first {
		t.Errorf("reading from 0: %+v, want a gap with first %d", direct, first)
	}
	if free := budget - a.OutboxBytes(); free >= 1300 { // one DM's msg costs about 1,200
		t.Errorf("the outbox keeps %d bytes with %d free: it dropped more than it had to", a.OutboxBytes(), free)
	}

	// An attached connection whose next entry the budget pushes out is a slow consumer; its
	// client resumes with a gap.
	c, err := a.Attach(AttachOptions{After: a.LastSeq()})
	if err != nil {
		t.Fatal(err)
	}
	pos := c.Position()
	for i := range 20 {
		h.do(a, Envelope{Type: TypeDM, To: "a", Text: text, CID: StringCID("d" + strconv.Itoa(i))})
	}
	if _, err := c.Next(context.Background(), nil); code(err) != CodeSlowConsumer {
		t.Fatalf("a cursor whose entries went over the byte budget: %v, want slow_consumer", err)
	}
	c2, err := a.Attach(AttachOptions{After: pos})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c2.Next(context.Background(), nil)
	if err != nil || len(b.Direct) != 1 || b.Direct[0].Code != CodeGap {
		t.Errorf("resume after the budget dropped unread entries: %+v, %v; want a gap first", b.Direct, err)
	}
	c2.Detach()

	// The newest entry stays even when it alone is over the budget.
	h2 := newTestHub(t, Config{OutboxBytes: 100})
	b2 := h2.open("b")
	h2.do(b2, Envelope{Type: TypeDM, To: "b", Text: text, CID: StringCID("big")})
	if _, entries, _ := b2.Read(0, 10); len(entries) != 1 || entries[0].Seq != b2.LastSeq() {
		t.Errorf("with a budget smaller than one entry the outbox holds %d entries, want the newest", len(entries))
	}
}

func TestOutboxBytesDefault(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		want int
	}{
		{"default", Config{}, 1 << 20},
		{"scales with Outbox", Config{Outbox: 4096}, 4 << 20},
		{"set", Config{OutboxBytes: 5000}, 5000},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.cfg.withDefaults().OutboxBytes; got != c.want {
				t.Errorf("OutboxBytes = %d, want %d", got, c.want)
			}
		})
	}
}

func TestBatchBytes(t *testing.T) {
	h := newTestHub(t, Config{})
	a := h.open("a")
	base := a.LastSeq()
	text := strings.Repeat("y", 60<<10)
	for i := range 10 {
		h.do(a, Envelope{Type: TypeDM, To: "a", Text: text, CID: StringCID("c" + strconv.Itoa(i))})
	}
	size := func(es []Entry) (n int) {
		for _, e := range es {
			n += e.P.Size()
		}
		return n
	}
	_, entries, err := a.Read(base, 512)
	if err != nil {
		t.Fatal(err)
	}
	if n, lastSize := size(entries), entries[len(entries)-1].P.Size(); n < MaxBatchBytes || n-lastSize >= MaxBatchBytes {
		t.Errorf("a poll answer carries %d bytes in %d entries; it should stop at the first entry that takes it to %d", n, len(entries), MaxBatchBytes)
	}
	if entries[len(entries)-1].Seq == a.LastSeq() {
		t.Errorf("one poll answer carried the whole 600 KB outbox")
	}
	c, err := a.Attach(AttachOptions{After: base})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Detach()
	got := base
	for got < a.LastSeq() {
		b, err := c.Next(context.Background(), make([]Entry, 0, 512))
		if err != nil {
			t.Fatal(err)
		}
		if n := size(b.Entries); len(b.Entries) > 1 && n-b.Entries[len(b.Entries)-1].P.Size() >= MaxBatchBytes {
			t.Errorf("a cursor batch carries %d bytes in %d entries; the cap is %d plus one entry", n, len(b.Entries), MaxBatchBytes)
		}
		if b.Entries[0].Seq != got+1 {
			t.Fatalf("batch starts at %d after %d", b.Entries[0].Seq, got)
		}
		got = b.Entries[len(b.Entries)-1].Seq
	}
}

func TestSessionLimits(t *testing.T) {
	h := newTestHub(t, Config{MaxSessions: 4, MaxSessionsPerUser: 2, SessionTTL: time.Minute, Heartbeat: time.Hour})
	a1, _ := h.open("a"), h.open("a")
	if _, err := h.Open(context.Background(), "a"); code(err) != CodeTooManySessions {
		t.Fatalf("a third session of a with MaxSessionsPerUser 2: %v, want too_many_sessions", err)
	}
	h.open("b")
	h.open("c")
	if _, err := h.Open(context.Background(), "d"); code(err) != CodeServerFull {
		t.Fatalf("a fifth session with MaxSessions 4: %v, want server_full", err)
	}
	// A session that ends makes room, for its user and in all.
	c, err := a1.Attach(AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.Detach()
	h.tick(2 * time.Minute)
	if n := h.Sessions(); n != 0 {
		t.Fatalf("%d sessions after their TTL", n)
	}
	h.open("a")
	h.open("a")
	h.open("d")
	if _, err := h.Open(context.Background(), "a"); code(err) != CodeTooManySessions {
		t.Errorf("after expiry the per-user count is off: %v", err)
	}
	if h.perUser["a"] != 2 || len(h.perUser) != 2 {
		t.Errorf("per-user counts %v, want a:2 d:1", h.perUser)
	}
}

func TestWhoRateLimit(t *testing.T) {
	h := newTestHub(t, Config{Limits: Limits{WhoBurst: 32 << 10, WhoRate: 16 << 10}, PresenceLimit: 10, SessionTTL: time.Hour, Heartbeat: time.Hour})
	// 1,000 users with 60-character names: a member list of about 63 KB.
	for i := range 1000 {
		h.open(fmt.Sprintf("%060d", i))
	}
	a := h.open("asker")
	before := a.LastSeq()
	answered, refused := 0, 0
	var last error
	for range 50 {
		_, err := a.Handle(context.Background(), Envelope{Type: TypeWho, Room: Lobby})
		switch code(err) {
		case "":
			answered++
		case CodeRateLimited:
			refused++
			last = err
		default:
			t.Fatal(err)
		}
	}
	// The first answer is allowed (the allowance is full) and overdraws it.
	if answered != 1 || refused != 49 {
		t.Fatalf("50 who of a 63 KB member list with a 32 KiB burst: %d answered, %d refused; want 1 and 49", answered, refused)
	}
	if got := a.LastSeq() - before; got != 1 {
		t.Errorf("%d envelopes queued for 1 answer", got)
	}
	if !strings.Contains(last.Error(), "ask again in") {
		t.Errorf("the refusal does not say when to ask again: %v", last)
	}
	// A small room costs little: who of it is refused only while the allowance is spent.
	h.do(a, Envelope{Type: TypeJoin, Room: "small", CID: `1`})
	if _, err := a.Handle(context.Background(), Envelope{Type: TypeWho, Room: "small"}); code(err) != CodeRateLimited {
		t.Errorf("who of a small room with the allowance spent: %v, want rate_limited", err)
	}
	h.tick(4 * time.Second) // 64 KiB at 16 KiB/s: back to the full 32 KiB
	for i := range 20 {
		if _, err := a.Handle(context.Background(), Envelope{Type: TypeWho, Room: "small"}); err != nil {
			t.Fatalf("who %d of a small room after the refill: %v", i, err)
		}
	}
	if _, err := a.Handle(context.Background(), Envelope{Type: TypeWho, Room: Lobby}); err != nil {
		t.Errorf("who of the lobby with most of the allowance back: %v", err)
	}
}

func TestCursorDirectLimit(t *testing.T) {
	h := newTestHub(t, Config{})
	a := h.open("a")
	c, err := a.Attach(AttachOptions{After: a.LastSeq()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Detach()
	for range MaxDirect + 10 {
		c.Send(Envelope{Type: TypeError, Code: CodeBadJSON, Error: "nobody reads this"})
	}
	c.s.mu.Lock()
	n := len(c.direct)
	c.s.mu.Unlock()
	if n > MaxDirect {
		t.Errorf("%d answers wait for a writer that does not write; the limit is %d", n, MaxDirect)
	}
	if _, err := c.Next(context.Background(), nil); code(err) != CodeSlowConsumer {
		t.Errorf("a connection with %d unread answers: %v, want slow_consumer", MaxDirect+10, err)
	}
}

// TestSessionMemoryWorstCase fills sessions to every limit at once, with nothing shared between
// them, and checks the heap they take against the worst case docs/PROTOCOL.md states ("Memory"):
// at most 1.6 MiB a session with the default limits.
func TestSessionMemoryWorstCase(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: this test fills 8 sessions to 1.5 MiB each; run without -short")
	}
	const (
		sessions = 8
		bound    = 1.6 * (1 << 20) // docs/PROTOCOL.md, "Memory"
	)
	h := newTestHub(t, Config{SessionTTL: time.Hour, Heartbeat: time.Hour})
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	// The longest cids (128 characters), and texts that JSON escapes to six times their size.
	cid := func(u, i int) CID { return StringCID(fmt.Sprintf("%04d-%06d-%0116d", u, i, i)) }
	big := strings.Repeat("\x01", 10<<10)
	list := make([]*Session, sessions)
	for u := range list {
		user := fmt.Sprintf("user%060d", u)
		s := h.open(user)
		list[u] = s
		// Every room it may be in, with the longest names.
		for r := 1; r < h.cfg.Limits.MaxRooms; r++ {
			h.do(s, Envelope{Type: TypeJoin, Room: fmt.Sprintf("%04d%060d", u, r), CID: cid(u, r)})
		}
		// Every cid it may have remembered, the longest ones...
		for i := 0; i < 1024; i++ {
			h.do(s, Envelope{Type: TypeDM, To: user, Text: "x", CID: cid(u, 1000+i)})
		}
		// ... and an outbox full of big messages of its own.
		for i := 0; i < 40; i++ {
			h.do(s, Envelope{Type: TypeDM, To: user, Text: big, CID: cid(u, 3000+i)})
		}
		if got := s.OutboxBytes(); got > h.cfg.OutboxBytes || got != outboxCost(t, s) {
			t.Fatalf("session %d: the outbox counts %d bytes (its entries cost %d), the budget is %d", u, got, outboxCost(t, s), h.cfg.OutboxBytes)
		}
		if len(s.cids) != 1024 {
			t.Fatalf("session %d remembers %d cids, want 1024", u, len(s.cids))
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	per := float64(ms.HeapAlloc-before) / sessions
	t.Logf("heap per session filled to every limit: %.0f bytes (%.2f MiB); outbox %d bytes counted", per, per/(1<<20), list[0].OutboxBytes())
	if per > bound {
		t.Errorf("a session filled to every limit takes %.2f MiB of heap; docs/PROTOCOL.md says at most %.1f MiB", per/(1<<20), bound/(1<<20))
	}
	runtime.KeepAlive(list)
}
