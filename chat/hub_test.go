package chat

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// newTestHub starts a hub whose clock stands still: its janitor is stopped, and the test moves
// time with tick, which also runs what the janitor would (pings, timeouts, expiry).
func newTestHub(t *testing.T, cfg Config) *testHub {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h, err := NewHub(cfg)
	if err != nil {
		t.Fatal(err)
	}
	close(h.stop)
	<-h.done
	h.stop, h.done = make(chan struct{}), make(chan struct{})
	close(h.done) // Shutdown finds the janitor gone
	th := &testHub{Hub: h, t: t, now: h.clock.Load()}
	t.Cleanup(func() {
		if err := h.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return th
}

type testHub struct {
	*Hub
	t   *testing.T
	now int64
}

// tick advances the hub's clock by d and runs the janitor's sweep.
func (h *testHub) tick(d time.Duration) {
	h.now += int64(d)
	h.clock.Store(h.now)
	h.sweep(h.now, nil)
}

func (h *testHub) open(user string) *Session {
	h.t.Helper()
	s, err := h.Open(context.Background(), user)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *testHub) do(s *Session, env Envelope) Envelope {
	h.t.Helper()
	r, err := s.Handle(context.Background(), env)
	if err != nil {
		h.t.Fatalf("%s by %s: %v", env.Type, s.User(), err)
	}
	return r
}

// all returns every envelope in s's outbox.
func all(t *testing.T, s *Session) []Envelope {
	t.Helper()
	direct, entries, err := s.Read(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	out := direct
	for _, e := range entries {
		out = append(out, e.Envelope())
	}
	return out
}

func msgs(t *testing.T, s *Session) []Envelope {
	t.Helper()
	var out []Envelope
	for _, e := range all(t, s) {
		if e.Type == TypeMsg {
			out = append(out, e)
		}
	}
	return out
}

func presence(t *testing.T, s *Session, room, user, event string) int {
	t.Helper()
	n := 0
	for _, e := range all(t, s) {
		if e.Type == TypePresence && e.Room == room && e.User == user && e.Event == event {
			n++
		}
	}
	return n
}

func code(err error) string {
	var ce *Error
	if errors.As(err, &ce) {
		return ce.Code
	}
	return ""
}

func say(room, text, cid string) Envelope {
	return Envelope{Type: TypeSay, Room: room, Text: text, CID: StringCID(cid)}
}

func TestOpenAndLookup(t *testing.T) {
	h := newTestHub(t, Config{})
	s := h.open("alice")
	if len(s.ID()) != 32 {
		t.Errorf("session id %q is not 128 bits in hex", s.ID())
	}
	if w := Welcome(s); w.Type != TypeWelcome || w.Session != s.ID() || w.User != "alice" {
		t.Errorf("Welcome = %+v", w)
	}
	if got, err := h.Lookup(s.ID(), "alice"); err != nil || got != s {
		t.Errorf("Lookup: %v", err)
	}
	if _, err := h.Lookup(s.ID(), "mallory"); code(err) != CodeUnknownSession {
		t.Errorf("Lookup by another user: %v, want unknown_session", err)
	}
	if _, err := h.Open(context.Background(), "bad name"); code(err) != CodeBadUser {
		t.Errorf("Open with a bad name: %v", err)
	}
	if !slices.Equal(s.Rooms(), []string{Lobby}) {
		t.Errorf("a new session is in %v, want [lobby]", s.Rooms())
	}
	if h.Sessions() != 1 {
		t.Errorf("Sessions = %d", h.Sessions())
	}
}

func TestRoomFanOut(t *testing.T) {
	h := newTestHub(t, Config{})
	a1, a2, b := h.open("alice"), h.open("alice"), h.open("bob")
	h.do(a1, Envelope{Type: TypeJoin, Room: "red", CID: `1`})
	h.do(b, Envelope{Type: TypeJoin, Room: "red", CID: `1`})
	ok := h.do(a1, say("red", "hello", "s1"))
	if ok.Type != TypeOK || ok.ID == "" || ok.CID != StringCID("s1") || ok.Seq == 0 {
		t.Errorf("say answered %+v", ok)
	}
	for s, want := range map[*Session]int{a1: 1, a2: 0, b: 1} {
		if got := len(msgs(t, s)); got != want {
			t.Errorf("%s/%p got %d room messages, want %d", s.User(), s, got, want)
		}
	}
	if _, err := a2.Handle(context.Background(), say("red", "x", "s2")); code(err) != CodeNotMember {
		t.Errorf("say outside the room: %v", err)
	}
	h.do(a1, Envelope{Type: TypeLeave, Room: "red", CID: `2`})
	h.do(b, say("red", "after", "s3"))
	if got := len(msgs(t, a1)); got != 1 {
		t.Errorf("a session that left still gets the room: %d messages", got)
	}
	if _, err := a1.Handle(context.Background(), Envelope{Type: TypeLeave, Room: Lobby, CID: `3`}); code(err) != CodeBadRoom {
		t.Errorf("leaving the lobby: %v", err)
	}
}

func TestDM(t *testing.T) {
	h := newTestHub(t, Config{})
	a1, a2 := h.open("alice"), h.open("alice")
	b1, b2, b3 := h.open("bob"), h.open("bob"), h.open("bob")
	c := h.open("carol")
	ok := h.do(a1, Envelope{Type: TypeDM, To: "bob", Text: "hi", CID: `1`})
	for s, want := range map[*Session]int{a1: 1, a2: 1, b1: 1, b2: 1, b3: 1, c: 0} {
		m := msgs(t, s)
		if len(m) != want {
			t.Errorf("%s got %d copies, want %d", s.User(), len(m), want)
			continue
		}
		if want == 1 && (m[0].ID != ok.ID || m[0].To != "bob" || m[0].From != "alice" || m[0].Room != "") {
			t.Errorf("%s got %+v", s.User(), m[0])
		}
	}
	// To oneself: each tab once.
	h.do(c, Envelope{Type: TypeDM, To: "carol", Text: "me", CID: `2`})
	c2 := h.open("carol")
	h.do(c2, Envelope{Type: TypeDM, To: "carol", Text: "me again", CID: `3`})
	if got := len(msgs(t, c)); got != 2 {
		t.Errorf("carol's first tab has %d DMs to herself, want 2", got)
	}
	if got := len(msgs(t, c2)); got != 1 {
		t.Errorf("carol's second tab has %d DMs to herself, want 1", got)
	}
	if _, err := a1.Handle(context.Background(), Envelope{Type: TypeDM, To: "nobody", Text: "x", CID: `4`}); code(err) != CodeUnknownUser {
		t.Errorf("DM to nobody: %v", err)
	}
}

func TestCIDDedupe(t *testing.T) {
	h := newTestHub(t, Config{})
	a, b := h.open("alice"), h.open("bob")
	first := h.do(a, say(Lobby, "once", "c1"))
	again := h.do(a, say(Lobby, "once", "c1"))
	if again.Type != TypeOK || again.ID != first.ID || again.CID != first.CID || again.Seq <= first.Seq {
		t.Errorf("a retry got %+v, the first %+v; want the same ok queued again", again, first)
	}
	// The same cid in another session is another command.
	other := h.do(b, say(Lobby, "once", "c1"))
	if other.ID == first.ID {
		t.Error("two sessions' commands with one cid were taken for one")
	}
	// Concurrent retries: one message.
	const n = 50
	var wg sync.WaitGroup
	answers := make([]Envelope, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := a.Handle(context.Background(), say(Lobby, "racing", "c2"))
			if err != nil {
				t.Error(err)
			}
			answers[i] = r
		}()
	}
	wg.Wait()
	for _, r := range answers {
		if r.ID != answers[0].ID || r.CID != answers[0].CID || r.Type != TypeOK {
			t.Fatalf("concurrent retries got different answers: %+v and %+v", answers[0], r)
		}
	}
	count := 0
	for _, m := range msgs(t, b) {
		if m.Text == "racing" {
			count++
		}
	}
	if count != 1 {
		t.Errorf("50 concurrent retries made %d messages, want 1", count)
	}
	// A command that failed is not remembered: once the session may do it, a retry works.
	if _, err := a.Handle(context.Background(), say("later", "x", "c3")); code(err) != CodeNotMember {
		t.Fatalf("say before joining: %v", err)
	}
	h.do(a, Envelope{Type: TypeJoin, Room: "later", CID: `9`})
	if r := h.do(a, say("later", "x", "c3")); r.Type != TypeOK {
		t.Errorf("the retry after joining: %+v", r)
	}
}

func TestPresence(t *testing.T) {
	h := newTestHub(t, Config{})
	a := h.open("alice")
	b1 := h.open("bob")
	if presence(t, a, Lobby, "bob", "join") != 1 {
		t.Error("alice did not see bob join the lobby")
	}
	h.do(a, Envelope{Type: TypeJoin, Room: "p", CID: `1`})
	h.do(b1, Envelope{Type: TypeJoin, Room: "p", CID: `1`})
	b2 := h.open("bob")
	h.do(b2, Envelope{Type: TypeJoin, Room: "p", CID: `1`})
	if n := presence(t, a, "p", "bob", "join"); n != 1 {
		t.Errorf("alice saw %d joins of bob (two tabs), want 1", n)
	}
	var list []Envelope
	for _, e := range all(t, b1) {
		if e.Type == TypePresence && e.Room == "p" && e.Members != nil {
			list = append(list, e)
		}
	}
	if len(list) != 1 || !slices.Equal(list[0].Members, []string{"alice", "bob"}) {
		t.Errorf("bob's member list on joining: %+v", list)
	}
	who := h.do(a, Envelope{Type: TypeWho, Room: "p", CID: `7`})
	if who.Type != TypePresence || !slices.Equal(who.Members, []string{"alice", "bob"}) || who.CID != `7` || who.Seq == 0 {
		t.Errorf("who = %+v", who)
	}
	h.do(b2, Envelope{Type: TypeLeave, Room: "p", CID: `2`})
	if presence(t, a, "p", "bob", "leave") != 0 {
		t.Error("bob's leave was announced while his other tab is in the room")
	}
	h.do(b1, Envelope{Type: TypeLeave, Room: "p", CID: `2`})
	if presence(t, a, "p", "bob", "leave") != 1 {
		t.Error("bob's leave was not announced")
	}
	if presence(t, b1, "p", "bob", "leave") != 0 {
		t.Error("the leaver got its own leave event")
	}
	who = h.do(a, Envelope{Type: TypeWho, Room: "p"})
	if !slices.Equal(who.Members, []string{"alice"}) {
		t.Errorf("who after bob left = %v", who.Members)
	}
	// The member list is for members, as the room's messages are; the lobby's is everyone's.
	before := b1.LastSeq()
	if _, err := b1.Handle(context.Background(), Envelope{Type: TypeWho, Room: "p", CID: `8`}); code(err) != CodeNotMember {
		t.Errorf("who of a room left: %v, want %s", err, CodeNotMember)
	}
	if _, err := b1.Handle(context.Background(), Envelope{Type: TypeWho, Room: "never"}); code(err) != CodeNotMember {
		t.Errorf("who of a room never joined: %v, want %s", err, CodeNotMember)
	}
	if b1.LastSeq() != before {
		t.Errorf("a refused who queued %d envelopes", b1.LastSeq()-before)
	}
	if who := h.do(b1, Envelope{Type: TypeWho, Room: Lobby}); !slices.Equal(who.Members, []string{"alice", "bob"}) {
		t.Errorf("who lobby = %v", who.Members)
	}
}

func TestPresenceLimit(t *testing.T) {
	h := newTestHub(t, Config{PresenceLimit: 2})
	a := h.open("a")
	h.open("b")
	h.open("c") // the lobby now has 3 users: no event, no list
	if presence(t, a, Lobby, "b", "join") != 1 || presence(t, a, Lobby, "c", "join") != 0 {
		t.Error("join events beyond PresenceLimit")
	}
	who := h.do(a, Envelope{Type: TypeWho, Room: Lobby})
	if len(who.Members) != 3 {
		t.Errorf("who lists %v; who is not limited", who.Members)
	}
}

func TestTooManyRooms(t *testing.T) {
	h := newTestHub(t, Config{Limits: Limits{MaxRooms: 3}})
	s := h.open("a")
	h.do(s, Envelope{Type: TypeJoin, Room: "r1"})
	h.do(s, Envelope{Type: TypeJoin, Room: "r2"})
	if _, err := s.Handle(context.Background(), Envelope{Type: TypeJoin, Room: "r3"}); code(err) != CodeTooManyRooms {
		t.Errorf("a fourth room: %v, want too_many_rooms", err)
	}
	h.do(s, Envelope{Type: TypeJoin, Room: "r2"}) // already in: fine
}

func TestOutboxRing(t *testing.T) {
	h := newTestHub(t, Config{Outbox: 16, SendQueue: 16})
	a := h.open("a")
	base := a.LastSeq() // the lobby's member list
	for i := range 40 {
		h.do(a, say(Lobby, strconv.Itoa(i), "c"+strconv.Itoa(i)))
	}
	last := a.LastSeq()
	if want := base + 80; last != want { // a msg and an ok per say
		t.Fatalf("LastSeq = %d, want %d", last, want)
	}
	direct, entries, err := a.Read(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 16 || entries[0].Seq != last-15 || entries[15].Seq != last {
		t.Fatalf("the outbox holds %d entries from %d, want 16 ending at %d", len(entries), entries[0].Seq, last)
	}
	for i := 1; i < len(entries); i++ {
		if entries[i].Seq != entries[i-1].Seq+1 {
			t.Fatalf("seqs not contiguous: %d after %d", entries[i].Seq, entries[i-1].Seq)
		}
	}
	if len(direct) != 1 || direct[0].Code != CodeGap || direct[0].First != last-15 {
		t.Errorf("reading from 0 after eviction: %+v, want a gap with first %d", direct, last-15)
	}
	// Reading within the outbox: no gap; max is honoured.
	direct, entries, _ = a.Read(last-5, 3)
	if len(direct) != 0 || len(entries) != 3 || entries[0].Seq != last-4 {
		t.Errorf("Read(last-5, 3) = %v, %d entries from %d", direct, len(entries), entries[0].Seq)
	}
	if _, _, err := a.Read(last+1, 10); code(err) != CodeBadAfter {
		t.Errorf("Read beyond the newest seq: %v", err)
	}
	// The same through a cursor.
	c, err := a.Attach(AttachOptions{After: 3})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Next(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Direct) != 1 || b.Direct[0].Code != CodeGap || b.Direct[0].First != last-15 || b.Entries[0].Seq != last-15 {
		t.Errorf("attach after 3: direct %+v, first entry %d", b.Direct, b.Entries[0].Seq)
	}
	c.Detach()
}

func TestOutboxGrowth(t *testing.T) {
	h := newTestHub(t, Config{Outbox: 1000, SendQueue: 1000})
	a := h.open("a")
	for i := range 300 {
		h.do(a, say(Lobby, "x", "c"+strconv.Itoa(i)))
	}
	_, entries, _ := a.Read(0, 10000)
	if len(entries) != int(a.LastSeq()) {
		t.Errorf("the outbox holds %d of %d entries; it should grow up to Outbox", len(entries), a.LastSeq())
	}
	for i, e := range entries {
		if e.Seq != uint64(i+1) {
			t.Fatalf("entry %d has seq %d", i, e.Seq)
		}
	}
}

func TestOutboxAge(t *testing.T) {
	h := newTestHub(t, Config{OutboxAge: time.Minute, SessionTTL: time.Hour, Heartbeat: time.Hour})
	a := h.open("a")
	for i := range 5 {
		h.do(a, say(Lobby, "old", "o"+strconv.Itoa(i)))
	}
	old := a.LastSeq()
	h.tick(61 * time.Second)
	h.do(a, say(Lobby, "new", "n"))
	direct, entries, _ := a.Read(0, 100)
	if len(entries) != 2 || entries[0].Seq != old+1 {
		t.Errorf("after aging, the outbox holds %d entries from %d, want the 2 new ones from %d", len(entries), entries[0].Seq, old+1)
	}
	if len(direct) != 1 || direct[0].Code != CodeGap || direct[0].First != old+1 {
		t.Errorf("gap = %+v", direct)
	}
	// The newest entry stays however old it is, so a client can always learn where it is.
	h.tick(time.Hour / 2)
	if _, entries, _ := a.Read(0, 100); len(entries) != 1 || entries[0].Seq != a.LastSeq() {
		t.Errorf("after everything aged: %d entries", len(entries))
	}
}

func TestCursorReplaced(t *testing.T) {
	h := newTestHub(t, Config{})
	a := h.open("a")
	c1, err := a.Attach(AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := a.Attach(AttachOptions{After: a.LastSeq()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c1.Next(context.Background(), nil); code(err) != CodeReplaced {
		t.Errorf("the replaced cursor's Next: %v, want replaced", err)
	}
	h.do(a, say(Lobby, "x", "c"))
	b, err := c2.Next(context.Background(), nil)
	if err != nil || len(b.Entries) != 2 {
		t.Errorf("the new cursor: %d entries, %v", len(b.Entries), err)
	}
	if c2.Position() != a.LastSeq() {
		t.Errorf("Position = %d, want %d", c2.Position(), a.LastSeq())
	}
	if _, err := a.Attach(AttachOptions{After: a.LastSeq() + 1}); code(err) != CodeBadAfter {
		t.Errorf("attach beyond the newest seq: %v", err)
	}
	c2.Detach()
}

func TestCursorSlowConsumer(t *testing.T) {
	h := newTestHub(t, Config{SendQueue: 4, Outbox: 64})
	a, b := h.open("a"), h.open("b")
	c, err := b.Attach(AttachOptions{After: b.LastSeq()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		h.do(a, say(Lobby, "x", "c"+strconv.Itoa(i)))
	}
	if _, err := c.Next(context.Background(), nil); code(err) != CodeSlowConsumer {
		t.Fatalf("a cursor 5 behind with SendQueue 4: %v, want slow_consumer", err)
	}
	// It can resume where it was: nothing lost.
	c2, err := b.Attach(AttachOptions{After: c.Position()})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c2.Next(context.Background(), nil)
	if err != nil || len(batch.Direct) != 0 || len(batch.Entries) != 5 {
		t.Errorf("resume after slow_consumer: %+v, %v", batch, err)
	}
	c2.Detach()
}

func TestCursorNextWaits(t *testing.T) {
	h := newTestHub(t, Config{})
	a := h.open("a")
	c, _ := a.Attach(AttachOptions{After: a.LastSeq()})
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		_, err := c.Next(ctx, nil)
		got <- err
	}()
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Errorf("Next after cancel: %v", err)
	}
	// Send: an envelope for this connection only, without seq.
	c.Send(Envelope{Type: TypeError, Code: CodeBadJSON})
	b, err := c.Next(context.Background(), nil)
	if err != nil || len(b.Direct) != 1 || len(b.Entries) != 0 {
		t.Errorf("after Send: %+v, %v", b, err)
	}
	c.Detach()
	if _, err := c.Next(context.Background(), nil); err == nil {
		t.Error("Next after Detach returned no error")
	}
	c.Send(Envelope{Type: TypePing}) // no effect on an ended cursor, no panic
}

func TestHeartbeat(t *testing.T) {
	h := newTestHub(t, Config{Heartbeat: time.Second, HeartbeatTimeout: time.Second, SessionTTL: 10 * time.Second})
	a := h.open("a")
	c, _ := a.Attach(AttachOptions{After: a.LastSeq(), Heartbeat: true})
	h.tick(time.Second)
	b, err := c.Next(context.Background(), nil)
	if err != nil || !b.Ping {
		t.Fatalf("after one heartbeat: %+v, %v, want a ping", b, err)
	}
	// The client answers: no timeout.
	h.do(a, Envelope{Type: TypePong})
	h.tick(1500 * time.Millisecond)
	if b, err := c.Next(context.Background(), nil); err != nil || !b.Ping {
		t.Fatalf("a client that answered: %+v, %v", b, err)
	}
	// Silence: the cursor ends with heartbeat_timeout, the session stays for a resume.
	h.tick(1500 * time.Millisecond)
	if _, err := c.Next(context.Background(), nil); code(err) != CodeHeartbeat {
		t.Fatalf("a silent client: %v, want heartbeat_timeout", err)
	}
	if _, err := h.Lookup(a.ID(), ""); err != nil {
		t.Errorf("the session went with its connection: %v", err)
	}
	// A cursor without Heartbeat gets no pings.
	c2, _ := a.Attach(AttachOptions{After: a.LastSeq()})
	h.tick(5 * time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if b, err := c2.Next(ctx, nil); err == nil || b.Ping {
		t.Errorf("a cursor without heartbeats got %+v, %v", b, err)
	}
	c2.Detach()
}

func TestSessionExpiry(t *testing.T) {
	h := newTestHub(t, Config{SessionTTL: 10 * time.Second, Heartbeat: time.Hour})
	a, b := h.open("a"), h.open("b")
	h.do(b, Envelope{Type: TypeJoin, Room: "r"})
	h.do(a, Envelope{Type: TypeJoin, Room: "r"})
	c, _ := b.Attach(AttachOptions{After: b.LastSeq()})
	// A polling session stays while it is read.
	for range 3 {
		h.tick(6 * time.Second)
		if _, _, err := a.Read(a.LastSeq(), 10); err != nil {
			t.Fatalf("a polled session expired: %v", err)
		}
	}
	// An attached session stays however long; a detached one expires after the TTL.
	ca, _ := a.Attach(AttachOptions{After: a.LastSeq()})
	defer ca.Detach()
	h.tick(30 * time.Second)
	if _, err := h.Lookup(b.ID(), ""); err != nil {
		t.Fatalf("an attached session expired: %v", err)
	}
	c.Detach()
	h.tick(9 * time.Second)
	if _, err := h.Lookup(b.ID(), ""); err != nil {
		t.Fatalf("a session expired before its TTL: %v", err)
	}
	h.tick(2 * time.Second)
	if _, err := h.Lookup(b.ID(), ""); code(err) != CodeUnknownSession {
		t.Fatalf("a detached session past its TTL: %v", err)
	}
	if _, err := b.Attach(AttachOptions{}); code(err) != CodeUnknownSession {
		t.Errorf("attach to an expired session: %v", err)
	}
	if presence(t, a, "r", "b", "leave") != 1 || presence(t, a, Lobby, "b", "leave") != 1 {
		t.Error("the others were not told b left")
	}
	who := h.do(a, Envelope{Type: TypeWho, Room: "r"})
	if !slices.Equal(who.Members, []string{"a"}) {
		t.Errorf("who after expiry = %v", who.Members)
	}
	if _, err := a.Handle(context.Background(), Envelope{Type: TypeDM, To: "b", Text: "x", CID: `1`}); code(err) != CodeUnknownUser {
		t.Errorf("a DM to the expired user: %v", err)
	}
	if _, err := b.Handle(context.Background(), Envelope{Type: TypeJoin, Room: "again"}); code(err) != CodeUnknownSession {
		t.Errorf("joining with an expired session: %v", err)
	}
	h.do(a, Envelope{Type: TypeJoin, Room: "again"})
	who = h.do(a, Envelope{Type: TypeWho, Room: "again"})
	if !slices.Equal(who.Members, []string{"a"}) {
		t.Errorf("an expired session joined a room: %v", who.Members)
	}
}

func TestShutdown(t *testing.T) {
	h := newTestHub(t, Config{})
	a := h.open("a")
	c, _ := a.Attach(AttachOptions{})
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next(context.Background(), nil); code(err) != CodeShutdown {
		t.Errorf("a cursor at shutdown: %v", err)
	}
	if _, err := h.Open(context.Background(), "b"); !errors.Is(err, ErrClosed) {
		t.Errorf("Open after Shutdown: %v", err)
	}
	if _, err := h.Lookup(a.ID(), ""); !errors.Is(err, ErrClosed) {
		t.Errorf("Lookup after Shutdown: %v", err)
	}
	if err := h.Shutdown(context.Background()); err != nil {
		t.Errorf("a second Shutdown: %v", err)
	}
}

// TestJanitor runs a real hub (its own janitor) for heartbeats and expiry end to end.
func TestJanitor(t *testing.T) {
	h, err := NewHub(Config{Heartbeat: 20 * time.Millisecond, HeartbeatTimeout: 20 * time.Millisecond,
		SessionTTL: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Shutdown(context.Background())
	b, err := h.Open(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	watch, _ := b.Attach(AttachOptions{After: b.LastSeq()}) // no heartbeat: b stays
	defer watch.Detach()
	a, err := h.Open(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := a.Attach(AttachOptions{After: a.LastSeq(), Heartbeat: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pings := 0
	for {
		b, err := c.Next(ctx, nil)
		if code(err) == CodeHeartbeat {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if b.Ping {
			pings++
		}
	}
	if pings == 0 {
		t.Error("no ping before the heartbeat timeout")
	}
	// The silent session expires after its TTL: b sees a leave the lobby.
	for left := false; !left; {
		batch, err := watch.Next(ctx, nil)
		if err != nil {
			t.Fatalf("waiting for a's leave: %v", err)
		}
		for _, e := range batch.Entries {
			if env := e.Envelope(); env.Type == TypePresence && env.User == "a" && env.Event == "leave" {
				left = true
			}
		}
	}
	if _, err := h.Lookup(a.ID(), ""); code(err) != CodeUnknownSession {
		t.Errorf("after the leave, Lookup: %v", err)
	}
}

// TestConcurrentJoinLeave: a join and a leave of one room by one session at once (two HTTP
// requests in flight) leave the session either in the room or out of it, everywhere: its own
// room list, the member list, and who gets the room's messages.
func TestConcurrentJoinLeave(t *testing.T) {
	h := newTestHub(t, Config{})
	a, b := h.open("a"), h.open("b")
	h.do(b, Envelope{Type: TypeJoin, Room: "r"})
	for i := range 300 {
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _, _ = a.Handle(context.Background(), Envelope{Type: TypeJoin, Room: "r"}) }()
		go func() { defer wg.Done(); _, _ = a.Handle(context.Background(), Envelope{Type: TypeLeave, Room: "r"}) }()
		wg.Wait()
		inRooms := slices.Contains(a.Rooms(), "r")
		who := h.do(b, Envelope{Type: TypeWho, Room: "r"})
		inWho := slices.Contains(who.Members, "a")
		before := a.LastSeq()
		h.do(b, Envelope{Type: TypeSay, Room: "r", Text: "x", CID: StringCID("c" + strconv.Itoa(i))})
		gotMsg := a.LastSeq() > before
		if inRooms != inWho || inRooms != gotMsg {
			t.Fatalf("round %d: in the session's rooms %v, in who %v, gets the room's messages %v", i, inRooms, inWho, gotMsg)
		}
		h.do(a, Envelope{Type: TypeLeave, Room: "r"})
	}
}
