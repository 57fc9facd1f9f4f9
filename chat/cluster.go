package chat

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// This file is the hub's shared mode, one node of several sharing their sessions through a
// SharedStore: committing outbox entries to its SessionStore, publishing and catching up on its
// TopicLog, claiming sessions from other nodes, forwarding commands to them and letting
// sessions go.

// sharedMode is the hub's mode on a SharedStore.
type sharedMode struct {
	h           *Hub
	startShared func(SharedHooks) error
	topics      TopicLog     // the store's pub/sub with positions
	store       SessionStore // the store's sessions: claims and outboxes

	claiming map[string]chan struct{} // sessions being claimed from another node; guarded by h.mu
	lastKeep int64                    // janitor only: when the stored sessions were last refreshed
}

func newSharedMode(h *Hub, ss SharedStore) *sharedMode {
	return &sharedMode{h: h, startShared: ss.StartShared, topics: ss, store: ss,
		claiming: map[string]chan struct{}{}}
}

func (m *sharedMode) start() error {
	return m.startShared(SharedHooks{Deliver: m.deliverAt, Released: m.release, Command: m.localCommand})
}

// admit counts the user's sessions on every node; the hub's local count also holds back a
// burst of opens on this node.
func (m *sharedMode) admit(ctx context.Context, user string) error {
	max := m.h.cfg.MaxSessionsPerUser
	if n, err := m.h.presence.UserSessions(ctx, user); err == nil && n >= max {
		return errTooManySessions(user, max)
	}
	return nil
}

func (m *sharedMode) create(ctx context.Context, s *Session) error {
	if err := m.store.CreateSession(ctx, s.id, s.user); err != nil {
		return Errorf(CodeUnavailable, "no session could be opened, try again: %v", err)
	}
	return nil
}

// publish publishes once per cid: a command retried with the same cid publishes nothing again,
// whichever node it reaches, and gets the id of the first publication.
func (m *sharedMode) publish(ctx context.Context, s *Session, cid CID, id string, p *Payload, topics ...string) (string, error) {
	prev, err := m.topics.PublishOnce(ctx, s.id, cid, id, p.Bytes(), topics...)
	if err != nil {
		return "", Errorf(CodeUnavailable, "message not sent, try again: %v", err)
	}
	if prev != "" {
		id = prev
	}
	return id, nil
}

// join records the membership and queues the member list in one step of the store, so that
// they never come apart whatever node the session moves to.
func (m *sharedMode) join(ctx context.Context, s *Session, room string) (bool, bool, error) {
	s.appendMu.Lock()
	r, err := m.store.JoinRoom(ctx, room, s.user, s.id, m.h.cfg.PresenceLimit)
	if err == nil && r.List.Seq != 0 {
		m.pushStored(ctx, s, PayloadFromBytes(r.List.Data), r.List.Seq)
	}
	s.appendMu.Unlock()
	if err == nil && !r.Held {
		m.release(s.id) // another node has it: the client tries again there
	}
	return r.First, true, err
}

// sync waits until everything published to s before the call is in its outbox ahead of what
// comes next, as on a single node, wherever it was published.
func (m *sharedMode) sync(ctx context.Context, s *Session) error {
	if err := m.topics.Sync(ctx, s.topics()); err != nil {
		return Errorf(CodeUnavailable, "member list unavailable, try again: %v", err)
	}
	return nil
}

func (m *sharedMode) drop(ctx context.Context, s *Session) {
	if err := m.store.DropSession(ctx, s.id); err != nil {
		m.h.log.Warn("shared session not deleted (it expires on its own)", "err", err)
	}
}

// storeTimeout bounds one store operation made on the hub's own behalf (deliveries, expiry,
// keep-alive), so that a store that went away shows as errors, never as a hang.
const storeTimeout = 5 * time.Second

// commit commits the entry to the store first; a session another node has claimed is let go
// here and the caller gets an unavailable error (the client retries, and its retry reaches the
// session where it now is).
func (m *sharedMode) commit(ctx context.Context, s *Session, p *Payload) (uint64, error) {
	s.appendMu.Lock()
	c := []Commit{{SID: s.id, Data: p.Bytes()}}
	err := m.storeCommit(ctx, c)
	var seq uint64
	if err == nil && c[0].Seq != 0 {
		seq = m.pushStored(ctx, s, p, c[0].Seq)
	}
	s.appendMu.Unlock()
	switch {
	case err != nil:
		return 0, Errorf(CodeUnavailable, "the session store is unavailable, try again: %v", err)
	case c[0].Seq == 0:
		m.release(s.id)
		return 0, errMoved()
	case seq == 0:
		s.mu.Lock()
		gone := s.goneLocked()
		s.mu.Unlock()
		return 0, gone
	}
	return seq, nil
}

// storeCommit commits cs to the store, not cancelled with the request that asked for it: a
// commit cut off halfway leaves the store ahead of this node (pushStored then fills in).
func (m *sharedMode) storeCommit(ctx context.Context, cs []Commit) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	return m.store.Commit(ctx, cs)
}

// pushStored queues p, committed to the store at seq, in s's outbox. If the store holds
// entries this node has not queued (a commit whose answer was lost: a timeout, a broken
// connection), they are read back first, so that the outbox has no hole. Call it with
// s.appendMu held.
//
// With p nil it only reads back what the store has beyond this node's outbox.
func (m *sharedMode) pushStored(ctx context.Context, s *Session, p *Payload, seq uint64) uint64 {
	h := m.h
	if last := s.LastSeq(); p == nil || seq > last+1 {
		to := seq - 1
		if p == nil {
			to = 0 // everything
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
		missing, err := m.store.Entries(ctx, s.id, last+1, to)
		cancel()
		if err != nil {
			h.log.Warn("outbox entries could not be read back from the store; the client gets a gap", "err", err)
		}
		for _, e := range missing {
			s.pushAt(PayloadFromBytes(e.Data), e.Seq)
		}
	}
	if p == nil {
		return 0
	}
	return s.pushAt(p, seq)
}

// deliverAt is the SharedStore's delivery callback: one topic message, committed to the outbox
// of every local session of the topic in one store round trip, then queued locally.
func (m *sharedMode) deliverAt(topic string, pos uint64, data []byte) {
	ms := m.h.membersOf(topic)
	if ms == nil {
		return
	}
	list := ms.load()
	if len(list) == 0 {
		return
	}
	// Only this goroutine (the store's delivery goroutine) ever holds more than one
	// appendMu, so taking them all cannot deadlock.
	cs := make([]Commit, len(list))
	for i, s := range list {
		s.appendMu.Lock()
		cs[i] = Commit{SID: s.id, Topic: topic, Pos: pos, Data: data}
	}
	ok, retried := m.commitRetry(cs)
	p := PayloadFromBytes(data)
	var gone []string
	for i, s := range list {
		switch {
		case !ok:
		case cs[i].Skip:
			if retried { // the first try may have stored it without telling us
				m.pushStored(context.Background(), s, nil, 0)
			}
		case cs[i].Seq == 0:
			gone = append(gone, s.id)
		default:
			m.pushStored(context.Background(), s, p, cs[i].Seq)
		}
		s.appendMu.Unlock()
	}
	for _, id := range gone {
		m.release(id)
	}
}

// commitRetry commits cs, retrying while the store is unavailable, until the hub shuts down.
// The store delivers nothing else meanwhile: messages wait in it, not in memory.
func (m *sharedMode) commitRetry(cs []Commit) (ok, retried bool) {
	h := m.h
	wait := 50 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		err := m.store.Commit(ctx, cs)
		cancel()
		if err == nil {
			return true, retried
		}
		retried = true
		h.log.Warn("session store unavailable; delivery waits", "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-h.stop:
			t.Stop()
			return false, retried
		case <-t.C:
		}
		if wait < 2*time.Second {
			wait *= 2
		}
	}
}

// claim takes session id over from the node that holds it (or held it and died): its stored
// state becomes a local session, subscribed to its topics and caught up with what they carried
// since its last committed entry.
func (m *sharedMode) claim(ctx context.Context, id, user string) (*Session, error) {
	h := m.h
	for {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return nil, ErrClosed
		}
		if s := h.sessions[id]; s != nil {
			h.mu.Unlock()
			if user != "" && s.user != user {
				return nil, errNoSession()
			}
			return s, nil
		}
		wait, busy := m.claiming[id]
		if !busy {
			done := make(chan struct{})
			m.claiming[id] = done
			h.mu.Unlock()
			defer func() {
				h.mu.Lock()
				delete(m.claiming, id)
				h.mu.Unlock()
				close(done)
			}()
			break
		}
		h.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, Errorf(CodeUnavailable, "the session is being moved to this node; try again")
		}
	}
	var s *Session
	err := m.topics.Exclusive(ctx, func() error {
		st, err := m.store.Claim(ctx, id, user)
		if err != nil {
			return Errorf(CodeUnavailable, "the session store is unavailable, try again: %v", err)
		}
		if st == nil {
			return errNoSession()
		}
		s = m.restore(id, st)
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return ErrClosed
		}
		h.sessions[id] = s
		h.perUser[s.user]++
		h.mu.Unlock()
		h.addMember(ctx, h.users, "user:", s.user, s)
		for _, r := range st.Rooms {
			h.addMember(ctx, h.rooms, "room:", r, s)
		}
		for _, t := range s.topics() {
			from, ok := st.Pos[t]
			if !ok {
				continue
			}
			msgs, lost, err := m.topics.CatchUp(ctx, t, from)
			if err != nil {
				h.log.Warn("catching up a claimed session failed", "topic", t, "err", err)
				lost++ // at least one; the client is told
			}
			if lost > 0 {
				h.cc.lost.Add(lost)
				h.log.Warn("messages lost while a session moved between nodes", "topic", t, "lost", lost)
				_, _ = m.commitAt(ctx, s, "", 0, NewPayload(Envelope{Type: TypeError, Code: CodeLost,
					Error: utoa(lost) + " message(s) of " + t + " were no longer kept when this session moved to another server node"}))
			}
			for _, msg := range msgs {
				if _, err := m.commitAt(ctx, s, t, msg.Pos, PayloadFromBytes(msg.Data)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		if s != nil {
			m.release(id)
		}
		var ce *Error
		if errors.As(err, &ce) {
			return nil, ce
		}
		if errors.Is(err, ErrClosed) {
			return nil, err
		}
		return nil, Errorf(CodeUnavailable, "the session could not be moved to this node, try again: %v", err)
	}
	h.cc.claimed.Add(1)
	return s, nil
}

// commitAt commits one entry that came from topic at pos.
func (m *sharedMode) commitAt(ctx context.Context, s *Session, topic string, pos uint64, p *Payload) (uint64, error) {
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	c := []Commit{{SID: s.id, Topic: topic, Pos: pos, Data: p.Bytes()}}
	if err := m.storeCommit(ctx, c); err != nil {
		return 0, err
	}
	if c[0].Skip {
		return 0, nil
	}
	if c[0].Seq == 0 {
		return 0, Errorf(CodeUnavailable, "the session moved to another server node while it was being claimed")
	}
	return m.pushStored(ctx, s, p, c[0].Seq), nil
}

// restore builds a local session from its stored state.
func (m *sharedMode) restore(id string, st *SharedSession) *Session {
	h := m.h
	s := h.newSession(id, st.User)
	for _, r := range st.Rooms {
		s.rooms[r] = struct{}{}
	}
	for _, e := range st.Outbox {
		s.out.push(slot{p: PayloadFromBytes(e.Data), at: e.At}, h.cfg.Outbox)
	}
	s.seq = st.Seq
	if n := uint64(s.out.count); n > s.seq {
		s.out = ring{} // inconsistent store: start empty, readers get a gap
	}
	s.trimBytesLocked() // no cursor yet: nothing to lock against
	return s
}

// release lets a session go that another node has claimed: its connection here ends (the
// client reconnects, reaching the session where it now is); nothing changes in the store.
func (m *sharedMode) release(id string) {
	h := m.h
	h.mu.Lock()
	s := h.sessions[id]
	if s != nil {
		h.forgetLocked(s)
	}
	h.mu.Unlock()
	if s == nil {
		return
	}
	h.cc.released.Add(1)
	s.mu.Lock()
	s.kickLocked(Errorf(CodeReplaced, "the session moved to another server node; reconnect to resume"))
	s.closed = true
	s.moved = true
	rooms := make([]string, 0, len(s.rooms))
	for r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	h.removeMember(ctx, h.users, "user:", s.user, s)
	for _, r := range rooms {
		h.removeMember(ctx, h.rooms, "room:", r, s)
	}
}

// keep refreshes the stored sessions this node holds, at most every quarter of the session
// TTL.
func (m *sharedMode) keep(now int64, scratch []*Session) {
	h := m.h
	if now-m.lastKeep < int64(h.cfg.SessionTTL)/4 {
		return
	}
	m.lastKeep = now
	ids := make([]string, 0, len(scratch))
	for _, s := range scratch {
		ids = append(ids, s.id)
	}
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := m.store.Keep(ctx, ids); err != nil {
		h.log.Warn("stored sessions not refreshed", "err", err)
	}
}

// forward runs env on the node that holds session id or, if no live node holds it, here after
// claiming it.
func (m *sharedMode) forward(ctx context.Context, id, user string, env Envelope) (Envelope, error) {
	r, held, err := m.store.Forward(ctx, id, user, env)
	if held {
		return r, err
	}
	s, err := m.claim(ctx, id, user)
	if err != nil {
		return Envelope{}, err
	}
	return s.Handle(ctx, env)
}

func isMoved(err error) bool {
	var ce *Error
	return errors.As(err, &ce) && ce.Code == CodeUnavailable && ce.Text == errMoved().Text
}

// localCommand is SharedHooks.Command: a command forwarded from another node.
func (m *sharedMode) localCommand(ctx context.Context, id, user string, env Envelope) (Envelope, error) {
	h := m.h
	h.mu.RLock()
	s := h.sessions[id]
	h.mu.RUnlock()
	if s == nil || (user != "" && s.user != user) {
		return Envelope{}, ErrNotHeld
	}
	return s.Handle(ctx, env)
}

// ClusterStats counts what a node of a cluster did that a single node never does.
type ClusterStats struct {
	Claimed  uint64 // sessions this node took over from another node (or from a dead one)
	Released uint64 // sessions another node took over from this one
	// Lost is the number of topic messages a claimed session should have had but the store
	// no longer kept (trimmed): each is announced to the client as a gap.
	Lost uint64
}

type clusterCounters struct {
	claimed, released, lost atomic.Uint64
}

// ClusterStats returns the node's cluster counters (zero on a single node).
func (h *Hub) ClusterStats() ClusterStats {
	return ClusterStats{Claimed: h.cc.claimed.Load(), Released: h.cc.released.Load(), Lost: h.cc.lost.Load()}
}
