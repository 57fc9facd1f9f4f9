package transporttest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
)

// testRoomIsolation: a room message reaches exactly the sessions in the room, the sender's
// session included; a session not in the room cannot say there.
func testRoomIsolation(h *H) {
	t := h.T
	h.Start(Config{})
	a1, a2 := h.Connect("alice"), h.Connect("alice")
	b1, c1 := h.Connect("bob"), h.Connect("carol")
	a1.Join("red")
	b1.Join("red")
	c1.Join("blue")

	red := a1.Say("red", "to red")
	blue := c1.Say("blue", "to blue")
	lobby := b1.Say(chat.Lobby, "to lobby")
	if red.ID == "" || blue.ID == "" || lobby.ID == "" {
		t.Fatalf("an ok has no message id: %+v %+v %+v", red, blue, lobby)
	}
	tabs := []*Tab{a1, a2, b1, c1}
	for _, tb := range tabs {
		tb.Barrier()
	}
	want := map[*Tab][3]int{a1: {1, 0, 1}, a2: {0, 0, 1}, b1: {1, 0, 1}, c1: {0, 1, 1}}
	for _, tb := range tabs {
		w := want[tb]
		tb.ExactlyOnce(red.ID, w[0], "the red message")
		tb.ExactlyOnce(blue.ID, w[1], "the blue message")
		tb.ExactlyOnce(lobby.ID, w[2], "the lobby message")
		tb.NoGaps()
	}
	got := b1.Msgs(func(e chat.Envelope) bool { return e.ID == red.ID })
	if len(got) == 1 {
		if m := got[0]; m.Room != "red" || m.From != "alice" || m.Text != "to red" || m.To != "" || m.TS == 0 || m.Seq == 0 {
			t.Errorf("the red message arrived as %+v, want room red, from alice, text %q, a ts and a seq", m, "to red")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.env.Wait)
	defer cancel()
	_, err := a2.Send(ctx, chat.Envelope{Type: chat.TypeSay, Room: "red", Text: "not a member"})
	if errCode(err) != chat.CodeNotMember {
		t.Errorf("say to a room the session is not in: got %v, want code %s", err, chat.CodeNotMember)
	}
}

// testDMThreeTabs: a DM reaches every tab of the recipient once, and every tab of the sender
// once; a DM to oneself reaches each of one's tabs once.
func testDMThreeTabs(h *H) {
	t := h.T
	h.Start(Config{})
	b := []*Tab{h.Connect("bob"), h.Connect("bob"), h.Connect("bob")}
	a := []*Tab{h.Connect("alice"), h.Connect("alice")}
	c := []*Tab{h.Connect("carol"), h.Connect("carol")}

	toBob := a[0].MustSend(chat.Envelope{Type: chat.TypeDM, To: "bob", Text: "hi bob"})
	toAlice := b[1].MustSend(chat.Envelope{Type: chat.TypeDM, To: "alice", Text: "hi alice"})
	toSelf := c[0].MustSend(chat.Envelope{Type: chat.TypeDM, To: "carol", Text: "note to self"})
	every := slices.Concat(a, b, c)
	for _, tb := range every {
		tb.Barrier()
	}
	for _, tb := range every {
		bobOrAlice := 0
		if tb.User != "carol" {
			bobOrAlice = 1
		}
		self := 1 - bobOrAlice
		tb.ExactlyOnce(toBob.ID, bobOrAlice, "alice's DM to bob")
		tb.ExactlyOnce(toAlice.ID, bobOrAlice, "bob's DM to alice")
		tb.ExactlyOnce(toSelf.ID, self, "carol's DM to herself")
		tb.NoGaps()
	}
	if got := b[2].Msgs(func(e chat.Envelope) bool { return e.ID == toBob.ID }); len(got) == 1 {
		if m := got[0]; m.To != "bob" || m.From != "alice" || m.Text != "hi bob" || m.Room != "" {
			t.Errorf("the DM arrived as %+v, want to bob, from alice, no room", m)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.env.Wait)
	defer cancel()
	if _, err := a[0].Send(ctx, chat.Envelope{Type: chat.TypeDM, To: "nobody", Text: "x"}); errCode(err) != chat.CodeUnknownUser {
		t.Errorf("DM to a user without sessions: got %v, want code %s", err, chat.CodeUnknownUser)
	}
}

// testOKForEverySend: every join, leave, say and dm is answered by an ok with its cid, one at a
// time and many at once.
func testOKForEverySend(h *H) {
	t := h.T
	h.Start(Config{})
	a, b := h.Connect("alice"), h.Connect("bob")
	ctx, cancel := context.WithTimeout(context.Background(), h.env.Wait)
	defer cancel()
	cmds := []chat.Envelope{
		{Type: chat.TypeJoin, Room: "ok-room"},
		{Type: chat.TypeSay, Room: "ok-room", Text: "one"},
		{Type: chat.TypeDM, To: "bob", Text: "two"},
		{Type: chat.TypeSay, Room: chat.Lobby, Text: "three"},
		{Type: chat.TypeLeave, Room: "ok-room"},
		{Type: chat.TypeLeave, Room: "never-joined"},
	}
	ids := map[string]bool{}
	for i, cmd := range cmds {
		cmd.CID = chat.StringCID("ok-" + strconv.Itoa(i))
		r, err := a.Send(ctx, cmd)
		if err != nil {
			t.Fatalf("%s %+v: %v", cmd.Type, cmd, err)
		}
		if r.Type != chat.TypeOK || r.CID != cmd.CID || r.Seq == 0 {
			t.Errorf("%s: answer %+v, want an ok with cid %s and a seq", cmd.Type, r, cmd.CID)
		}
		if cmd.Type == chat.TypeSay || cmd.Type == chat.TypeDM {
			if r.ID == "" || ids[r.ID] {
				t.Errorf("%s: ok id %q is empty or not unique", cmd.Type, r.ID)
			}
			ids[r.ID] = true
		}
	}
	// Many at once: every one answered, with its own cid and its own id.
	const n = 32
	var wg sync.WaitGroup
	answers := make([]chat.Envelope, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i], errs[i] = a.Send(ctx, chat.Envelope{Type: chat.TypeSay, Room: chat.Lobby,
				Text: "burst " + strconv.Itoa(i), CID: chat.StringCID("burst-" + strconv.Itoa(i))})
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("concurrent say %d: %v", i, errs[i])
			continue
		}
		if r := answers[i]; r.Type != chat.TypeOK || r.CID != chat.StringCID("burst-"+strconv.Itoa(i)) || r.ID == "" || ids[r.ID] {
			t.Errorf("concurrent say %d: answer %+v, want its own ok", i, r)
		} else {
			ids[r.ID] = true
		}
	}
	b.Barrier()
	for i := range n {
		if r := answers[i]; r.ID != "" {
			b.ExactlyOnce(r.ID, 1, "a concurrent say")
		}
	}
}

// testOrder: a session sees each sender's room messages in the order they were sent; on
// transports that keep wire order, also in arrival order.
func testOrder(h *H) {
	t := h.T
	h.Start(Config{})
	const room, perSender = "ord", 40
	senders := []*Tab{h.Connect("s1"), h.Connect("s1"), h.Connect("s2"), h.Connect("s3")}
	readers := []*Tab{h.Connect("r"), h.Connect("r")}
	every := slices.Concat(senders, readers)
	for _, tb := range every {
		tb.Join(room)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(senders))
	for si, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), h.env.Wait)
			defer cancel()
			for i := range perSender {
				if _, err := s.Send(ctx, chat.Envelope{Type: chat.TypeSay, Room: room, Text: fmt.Sprintf("%d:%d", si, i)}); err != nil {
					errs <- fmt.Errorf("sender %d message %d: %v", si, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, tb := range every {
		tb.Barrier()
		msgs := tb.Msgs(func(e chat.Envelope) bool { return e.Room == room })
		if !h.Traits.Reorders {
			for i := 1; i < len(msgs); i++ {
				if msgs[i].Seq <= msgs[i-1].Seq {
					t.Errorf("%s: %s received seq %d after seq %d (wire order must be seq order on this transport)", h.Name, tb.User, msgs[i].Seq, msgs[i-1].Seq)
					break
				}
			}
		}
		slices.SortFunc(msgs, func(x, y chat.Envelope) int { return compareU64(x.Seq, y.Seq) })
		next := make([]int, len(senders))
		for _, m := range msgs {
			var si, i int
			if _, err := fmt.Sscanf(m.Text, "%d:%d", &si, &i); err != nil || si >= len(senders) {
				t.Errorf("%s: unexpected message %q", tb.User, m.Text)
				continue
			}
			if i != next[si] {
				t.Errorf("%s: %s: by seq, sender %d's message %d comes where %d should (send order broken)", h.Name, tb.User, si, i, next[si])
				break
			}
			next[si]++
		}
		for si, n := range next {
			if n != perSender {
				t.Errorf("%s: %s has %d of sender %d's %d messages", h.Name, tb.User, n, si, perSender)
			}
		}
		tb.NoGaps()
	}
}

func compareU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// testDropMidBurst: receivers and the sender lose their connection in the middle of a burst;
// each resumes and ends with every message exactly once.
func testDropMidBurst(h *H) {
	t := h.T
	h.Start(Config{})
	const room, total, inflight = "burst", 300, 4
	s := h.Connect("sender")
	r1, r2 := h.Connect("rx"), h.Connect("rx")
	for _, tb := range []*Tab{s, r1, r2} {
		tb.Join(room)
	}
	inRoom := func(e chat.Envelope) bool { return e.Room == room }

	ctx, cancel := context.WithTimeout(context.Background(), 3*h.env.Wait)
	defer cancel()
	var (
		mu   sync.Mutex
		ids  []string
		oks  int
		errs []error
	)
	okCount := func() int { mu.Lock(); defer mu.Unlock(); return oks }
	var senders sync.WaitGroup
	sem := make(chan struct{}, inflight)
	for i := range total {
		sem <- struct{}{}
		senders.Add(1)
		go func() {
			defer senders.Done()
			defer func() { <-sem }()
			r, err := s.Send(ctx, chat.Envelope{Type: chat.TypeSay, Room: room, Text: "b" + strconv.Itoa(i)})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			ids = append(ids, r.ID)
			oks++
		}()
		switch i {
		case total / 3:
			s.C.Drop() // sends in flight on a connection that breaks
		case total / 2:
			// Wait until the receivers are in the middle of the burst, then cut them.
			if err := r1.waitFor("a third of the burst", h.env.Wait, func() bool { return len(r1.Msgs(inRoom)) >= total/5 }); err != nil {
				t.Error(err)
			}
			r1.C.Drop()
			r2.C.Drop()
		}
	}
	senders.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d sends failed; first: %v", len(errs), total, errs[0])
	}
	if okCount() != total {
		t.Fatalf("%d oks for %d sends", okCount(), total)
	}
	r2.C.Drop() // and once more, after the burst
	for _, tb := range []*Tab{s, r1, r2} {
		tb.Barrier()
		lost, doubled := 0, 0
		for _, id := range ids {
			switch n := tb.Copies(id); {
			case n == 0:
				lost++
			case n > 1:
				doubled++
			}
		}
		if got := len(tb.Msgs(inRoom)); lost > 0 || doubled > 0 || got != total {
			t.Errorf("%s: %s after resume: %d messages, %d lost, %d doubled (want %d, 0, 0)", h.Name, tb.User, got, lost, doubled, total)
		}
		tb.NoGaps()
	}
}

// testRetryNotDoubled: the same cid sent again (in turn and at once, through Send and as raw
// bytes) gets the same ok and makes one message.
func testRetryNotDoubled(h *H) {
	t := h.T
	h.Start(Config{})
	a, b := h.Connect("alice"), h.Connect("bob")
	ctx, cancel := context.WithTimeout(context.Background(), h.env.Wait)
	defer cancel()

	say := chat.Envelope{Type: chat.TypeSay, Room: chat.Lobby, Text: "said twice", CID: chat.StringCID("retry-1")}
	first, err := a.Send(ctx, say)
	if err != nil {
		t.Fatal(err)
	}
	again, err := a.Send(ctx, say)
	if err != nil {
		t.Fatalf("sending cid retry-1 again: %v", err)
	}
	if again.ID != first.ID || again.CID != first.CID {
		t.Errorf("the same cid sent twice got ok %s, then %s: want the same answer", first.ID, again.ID)
	}

	const n = 8
	var wg sync.WaitGroup
	got := make([]chat.Envelope, n)
	errs := make([]error, n)
	dm := chat.Envelope{Type: chat.TypeDM, To: "bob", Text: "sent at once", CID: chat.StringCID("retry-2")}
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); got[i], errs[i] = a.Send(ctx, dm) }()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("concurrent send %d of cid retry-2: %v", i, errs[i])
		}
		if got[i].ID != got[0].ID {
			t.Errorf("concurrent sends of one cid got different oks: %s and %s", got[0].ID, got[i].ID)
		}
	}

	rawID := rawDuplicate(h, a)

	for _, tb := range []*Tab{a, b} {
		tb.Barrier()
		tb.ExactlyOnce(first.ID, 1, "the say sent twice")
		tb.ExactlyOnce(got[0].ID, 1, "the dm sent 8 times at once")
		if rawID != "" {
			tb.ExactlyOnce(rawID, 1, "the raw say sent twice")
		}
		want := 2
		if rawID != "" {
			want = 3
		}
		if n := len(tb.Msgs(func(e chat.Envelope) bool {
			return e.Text == "said twice" || e.Text == "sent at once" || e.Text == "raw twice"
		})); n != want {
			t.Errorf("%s: %s has %d messages from the retried sends, want %d", h.Name, tb.User, n, want)
		}
	}
}

// rawDuplicate sends the same say twice as raw bytes and returns the message id, or "" (after
// logging why) when the transport cannot send raw bytes.
func rawDuplicate(h *H, a *Tab) string {
	t := h.T
	ctx, cancel := context.WithTimeout(context.Background(), h.env.Wait)
	defer cancel()
	raw := []byte(`{"type":"say","room":"lobby","text":"raw twice","cid":"raw-dup-1"}`)
	if h.Traits.HTTPUpstream {
		var ids []string
		for range 2 {
			env, status, err := h.PostRaw(ctx, a.C.Session(), raw)
			if err != nil || env == nil || env.Type != chat.TypeOK || env.CID != `"raw-dup-1"` {
				t.Fatalf("POST /api/send of a raw say: status %d, answer %+v, err %v; want an ok with cid raw-dup-1", status, env, err)
			}
			ids = append(ids, env.ID)
		}
		if ids[0] != ids[1] {
			t.Errorf("the same raw say posted twice got ok %s then %s: want the same", ids[0], ids[1])
		}
		return ids[0]
	}
	rs, ok := a.C.(RawSender)
	if !ok {
		t.Logf("%s: skipping the raw duplicate: the client does not implement transporttest.RawSender", h.Name)
		return ""
	}
	for range 2 {
		if err := rs.SendRaw(ctx, raw); err != nil {
			if strings.Contains(err.Error(), transports.ErrNoRaw.Error()) {
				t.Logf("%s: skipping the raw duplicate: %v", h.Name, err)
				return ""
			}
			t.Fatalf("SendRaw: %v", err)
		}
	}
	var id string
	a.WaitFor("the ok of the raw say", func() bool { id, ok = a.Answer(`"raw-dup-1"`); return ok })
	return id
}

// testHeartbeatTimeout: a client that stops answering (no pongs on a persistent transport, no
// polls on a polling one) has its connection closed and its session expired, and the others
// see it leave; a client that keeps answering stays.
func testHeartbeatTimeout(h *H) {
	t := h.T
	h.Start(Config{Hub: chat.Config{
		// Short, with margins for a loaded machine: a client that answers must not be
		// expired by a stall of a few hundred milliseconds.
		Heartbeat:        150 * time.Millisecond,
		HeartbeatTimeout: 250 * time.Millisecond,
		SessionTTL:       time.Second,
	}})
	watcher := h.Connect("watcher")
	stays := h.Connect("stays")
	var silent *Tab
	if h.Traits.Polling {
		silent = h.Connect("silent")
	} else {
		silent = h.Connect("silent", func(o *transports.Options) { o.NoPong, o.NoReconnect = true, true })
	}
	watcher.WaitFor("silent's join", func() bool { return len(watcher.Presence(isPresence(chat.Lobby, "silent", "join"))) > 0 })
	if h.Traits.Polling {
		silent.Close() // it stops polling
	} else {
		silent.WaitFor("the server to end a connection that answers no ping", silent.Ended)
	}
	watcher.WaitFor("silent's leave", func() bool { return len(watcher.Presence(isPresence(chat.Lobby, "silent", "leave"))) > 0 })
	if n := len(watcher.Presence(isPresence(chat.Lobby, "stays", "leave"))); n > 0 {
		t.Errorf("%s: a client that answers pings (or polls) was expired", h.Name)
	}
	who := watcher.MustSend(chat.Envelope{Type: chat.TypeWho, Room: chat.Lobby})
	if m := sortedCopy(who.Members); !slices.Equal(m, []string{"stays", "watcher"}) {
		t.Errorf("%s: lobby members after the timeout: %v, want [stays watcher]", h.Name, m)
	}
	stays.Barrier()
}

// testPresence: join and leave events go to a room's members once per user (not per tab), and
// who lists the members.
func testPresence(h *H) {
	t := h.T
	h.Start(Config{})
	const room = "pres"
	a := h.Connect("alice")
	b1 := h.Connect("bob")
	a.WaitFor("bob's join of the lobby", func() bool { return len(a.Presence(isPresence(chat.Lobby, "bob", "join"))) > 0 })

	memberList := func(e chat.Envelope) bool { return e.Room == room && e.Members != nil && e.CID == "" }
	a.Join(room)
	a.WaitFor("alice's member list of "+room, func() bool { return len(a.Presence(memberList)) > 0 })
	if l := a.Presence(memberList); len(l) != 1 || !slices.Equal(l[0].Members, []string{"alice"}) {
		t.Errorf("%s: alice's member list on joining: %+v, want one with [alice]", h.Name, l)
	}
	b1.Join(room)
	a.WaitFor("bob's join of "+room, func() bool { return len(a.Presence(isPresence(room, "bob", "join"))) > 0 })
	b1.WaitFor("bob's member list of "+room, func() bool { return len(b1.Presence(memberList)) > 0 })
	if l := b1.Presence(memberList); len(l) != 1 || !slices.Equal(l[0].Members, []string{"alice", "bob"}) {
		t.Errorf("%s: bob's member list on joining: %+v, want one with [alice bob]", h.Name, l)
	}
	b2 := h.Connect("bob")
	b2.Join(room)
	who := a.MustSend(chat.Envelope{Type: chat.TypeWho, Room: room})
	if !slices.Equal(who.Members, []string{"alice", "bob"}) || who.Room != room {
		t.Errorf("%s: who %s: %+v, want members [alice bob]", h.Name, room, who)
	}
	b2.MustSend(chat.Envelope{Type: chat.TypeLeave, Room: room})
	a.Barrier()
	if n := len(a.Presence(isPresence(room, "bob", "join"))); n != 1 {
		t.Errorf("%s: alice saw %d join events of bob in %s, want 1 (one per user, not per tab)", h.Name, n, room)
	}
	if n := len(a.Presence(isPresence(room, "bob", "leave"))); n != 0 {
		t.Errorf("%s: alice saw bob leave %s while one of his tabs is still there", h.Name, room)
	}
	b1.MustSend(chat.Envelope{Type: chat.TypeLeave, Room: room})
	a.WaitFor("bob's leave of "+room, func() bool { return len(a.Presence(isPresence(room, "bob", "leave"))) > 0 })
	who = a.MustSend(chat.Envelope{Type: chat.TypeWho, Room: room})
	if !slices.Equal(who.Members, []string{"alice"}) {
		t.Errorf("%s: who %s after bob left: %v, want [alice]", h.Name, room, who.Members)
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.env.Wait)
	defer cancel()
	if _, err := b1.Send(ctx, chat.Envelope{Type: chat.TypeLeave, Room: chat.Lobby}); errCode(err) != chat.CodeBadRoom {
		t.Errorf("%s: leaving the lobby: got %v, want code %s", h.Name, err, chat.CodeBadRoom)
	}
	a.Barrier()
	if n := len(a.Presence(isPresence(room, "bob", "leave"))); n != 1 {
		t.Errorf("%s: alice saw %d leave events of bob, want 1", h.Name, n)
	}
}

// testSizeLimit: an envelope of exactly MaxEnvelope bytes is accepted; one byte more gets
// too_large and the connection goes on.
func testSizeLimit(h *H) {
	t := h.T
	const limit = 4096
	h.Start(Config{Hub: chat.Config{Limits: chat.Limits{MaxEnvelope: limit}}})
	a, b := h.Connect("alice"), h.Connect("bob")
	ctx, cancel := context.WithTimeout(context.Background(), h.env.Wait)
	defer cancel()
	sized := func(cid string, size int) chat.Envelope {
		env := chat.Envelope{Type: chat.TypeSay, Room: chat.Lobby, Text: "x", CID: chat.StringCID(cid)}
		env.Text = strings.Repeat("x", size-len(chat.Marshal(&env))+1)
		if n := len(chat.Marshal(&env)); n != size {
			t.Fatalf("built an envelope of %d bytes, want %d", n, size)
		}
		return env
	}
	atLimit := sized("at-limit", limit)
	r, err := a.Send(ctx, atLimit)
	if err != nil {
		t.Fatalf("%s: an envelope of exactly MaxEnvelope (%d) bytes: %v, want ok", h.Name, limit, err)
	}
	_, err = a.Send(ctx, sized("over-limit", limit+1))
	if errCode(err) != chat.CodeTooLarge {
		t.Errorf("%s: an envelope of MaxEnvelope+1 bytes: got %v, want code %s", h.Name, err, chat.CodeTooLarge)
	}
	after := a.Say(chat.Lobby, "still works")
	b.Barrier()
	b.ExactlyOnce(r.ID, 1, "the envelope at the limit")
	b.ExactlyOnce(after.ID, 1, "the message after the too_large one")
	if m := b.Msgs(func(e chat.Envelope) bool { return e.ID == r.ID }); len(m) == 1 && m[0].Text != atLimit.Text {
		t.Errorf("%s: the text at the limit arrived with %d bytes, want %d", h.Name, len(m[0].Text), len(atLimit.Text))
	}
}

// testMalformed: malformed, unknown and invalid envelopes get error envelopes with the right
// codes (and their cid when it is readable), and the connection keeps working.
func testMalformed(h *H) {
	t := h.T
	h.Start(Config{})
	a, b := h.Connect("alice"), h.Connect("bob")
	ctx, cancel := context.WithTimeout(context.Background(), h.env.Wait)
	defer cancel()

	// Through the client: valid JSON the server must refuse.
	for _, c := range []struct {
		env  chat.Envelope
		code string
	}{
		{chat.Envelope{Type: "shout", Text: "x"}, chat.CodeUnknownType},
		{chat.Envelope{Type: chat.TypeSay, Room: chat.Lobby}, chat.CodeMissingField},
		{chat.Envelope{Type: chat.TypeJoin, Room: "no spaces"}, chat.CodeBadRoom},
		{chat.Envelope{Type: chat.TypeDM, To: "not/valid", Text: "x"}, chat.CodeBadUser},
		{chat.Envelope{Type: chat.TypeDM, To: "nobody", Text: "x"}, chat.CodeUnknownUser},
		{chat.Envelope{Type: chat.TypeSay, Room: "elsewhere", Text: "x"}, chat.CodeNotMember},
	} {
		if _, err := a.Send(ctx, c.env); errCode(err) != c.code {
			t.Errorf("%s: sending %+v: got %v, want code %s", h.Name, c.env, err, c.code)
		}
	}

	// Raw bytes.
	raws := []struct {
		b    string
		code string
		cid  chat.CID
	}{
		{`{"type":"say","room":"lobby","text":"x","cid":"m1"`, chat.CodeBadJSON, ""},
		{`not json at all`, chat.CodeBadJSON, ""},
		{`[1,2,3]`, chat.CodeBadJSON, ""},
		{`{"type":"shout","cid":"m2"}`, chat.CodeUnknownType, `"m2"`},
		{`{"room":"lobby","cid":"m3"}`, chat.CodeMissingField, `"m3"`},
		{`{"type":"say","room":"lobby","text":"x","cid":"m4","seq":"nope"}`, chat.CodeBadJSON, `"m4"`},
		{`{"type":"join","room":"","cid":7}`, chat.CodeMissingField, `7`},
	}
	switch rs, isRaw := a.C.(RawSender); {
	case h.Traits.HTTPUpstream:
		for _, r := range raws {
			env, status, err := h.PostRaw(ctx, a.C.Session(), []byte(r.b))
			if err != nil || env == nil {
				t.Errorf("%s: POST %s: %v", h.Name, r.b, err)
				continue
			}
			if env.Type != chat.TypeError || env.Code != r.code || env.CID != r.cid || status/100 != 4 {
				t.Errorf("%s: POST %s: status %d, answer %+v; want a 4xx error envelope with code %s and cid %s", h.Name, r.b, status, env, r.code, r.cid)
			}
		}
	case isRaw:
		for i, r := range raws {
			if err := rs.SendRaw(ctx, []byte(r.b)); err != nil {
				if strings.Contains(err.Error(), transports.ErrNoRaw.Error()) {
					t.Logf("%s: skipping raw malformed envelopes: %v", h.Name, err)
					break
				}
				t.Fatalf("%s: SendRaw %s: %v", h.Name, r.b, err)
			}
			a.WaitFor(fmt.Sprintf("the error for %s", r.b), func() bool { return len(a.Errors()) > i })
			if e := a.Errors()[i]; e.Code != r.code || e.CID != r.cid {
				t.Errorf("%s: raw %s: answer %+v; want an error envelope with code %s and cid %s", h.Name, r.b, e, r.code, r.cid)
			}
		}
	default:
		t.Logf("%s: skipping raw malformed envelopes: the client does not implement transporttest.RawSender", h.Name)
	}

	ok := a.Say(chat.Lobby, "after the bad ones")
	b.Barrier()
	b.ExactlyOnce(ok.ID, 1, "the message after the malformed ones")
	a.Barrier()
	a.ExactlyOnce(ok.ID, 1, "the message after the malformed ones")
}
