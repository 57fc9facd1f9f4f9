package chat

import (
	"context"
	"errors"
	"time"
)

// This file is the hub's side of a SharedStore: committing outbox entries to the store,
// claiming sessions from other nodes and letting them go.

// storeTimeout bounds one store operation made on the hub's own behalf (deliveries, expiry,
// keep-alive), so that a store that went away shows as errors, never as a hang.
const storeTimeout = 5 * time.Second

// commit queues p in s's outbox and returns its seq (0 if the session has ended). With a
// SharedStore the entry is committed to the store first; a session another node has claimed
// is let go here and the caller gets an unavailable error (the client retries, and its retry
// reaches the session where it now is).
func (h *Hub) commit(ctx context.Context, s *Session, p *Payload) (uint64, error) {
	if h.shared == nil {
		return s.push(p), nil
	}
	s.appendMu.Lock()
	c := []Commit{{SID: s.id, Data: p.Bytes()}}
	err := h.storeCommit(ctx, c)
	var seq uint64
	if err == nil && c[0].Seq != 0 {
		seq = h.pushStored(ctx, s, p, c[0].Seq)
	}
	s.appendMu.Unlock()
	switch {
	case err != nil:
		return 0, Errorf(CodeUnavailable, "the session store is unavailable, try again: %v", err)
	case c[0].Seq == 0:
		h.release(s.id)
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
func (h *Hub) storeCommit(ctx context.Context, cs []Commit) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	return h.shared.Commit(ctx, cs)
}

// pushStored queues p, committed to the store at seq, in s's outbox. If the store holds
// entries this node has not queued (a commit whose answer was lost: a timeout, a broken
// connection), they are read back first, so that the outbox has no hole. Call it with
// s.appendMu held.
//
// With p nil it only reads back what the store has beyond this node's outbox.
func (h *Hub) pushStored(ctx context.Context, s *Session, p *Payload, seq uint64) uint64 {
	if last := s.LastSeq(); p == nil || seq > last+1 {
		to := seq - 1
		if p == nil {
			to = 0 // everything
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
		missing, err := h.shared.Entries(ctx, s.id, last+1, to)
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
func (h *Hub) deliverAt(topic string, pos uint64, data []byte) {
	m := h.membersOf(topic)
	if m == nil {
		return
	}
	list := m.load()
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
	ok, retried := h.commitRetry(cs)
	p := PayloadFromBytes(data)
	var gone []string
	for i, s := range list {
		switch {
		case !ok:
		case cs[i].Skip:
			if retried { // the first try may have stored it without telling us
				h.pushStored(context.Background(), s, nil, 0)
			}
		case cs[i].Seq == 0:
			gone = append(gone, s.id)
		default:
			h.pushStored(context.Background(), s, p, cs[i].Seq)
		}
		s.appendMu.Unlock()
	}
	for _, id := range gone {
		h.release(id)
	}
}

// commitRetry commits cs, retrying while the store is unavailable, until the hub shuts down.
// The store delivers nothing else meanwhile: messages wait in it, not in memory.
func (h *Hub) commitRetry(cs []Commit) (ok, retried bool) {
	wait := 50 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		err := h.shared.Commit(ctx, cs)
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
func (h *Hub) claim(ctx context.Context, id, user string) (*Session, error) {
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
		wait, busy := h.claiming[id]
		if !busy {
			done := make(chan struct{})
			h.claiming[id] = done
			h.mu.Unlock()
			defer func() {
				h.mu.Lock()
				delete(h.claiming, id)
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
	err := h.shared.Exclusive(ctx, func() error {
		st, err := h.shared.Claim(ctx, id, user)
		if err != nil {
			return Errorf(CodeUnavailable, "the session store is unavailable, try again: %v", err)
		}
		if st == nil {
			return errNoSession()
		}
		s = h.restore(id, st)
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
			msgs, lost, err := h.shared.CatchUp(ctx, t, from)
			if err != nil {
				h.log.Warn("catching up a claimed session failed", "topic", t, "err", err)
				lost++ // at least one; the client is told
			}
			if lost > 0 {
				h.cc.lost.Add(lost)
				h.log.Warn("messages lost while a session moved between nodes", "topic", t, "lost", lost)
				_, _ = h.commitAt(ctx, s, "", 0, NewPayload(Envelope{Type: TypeError, Code: CodeLost,
					Error: utoa(lost) + " message(s) of " + t + " were no longer kept when this session moved to another server node"}))
			}
			for _, m := range msgs {
				if _, err := h.commitAt(ctx, s, t, m.Pos, PayloadFromBytes(m.Data)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		if s != nil {
			h.release(id)
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
func (h *Hub) commitAt(ctx context.Context, s *Session, topic string, pos uint64, p *Payload) (uint64, error) {
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	c := []Commit{{SID: s.id, Topic: topic, Pos: pos, Data: p.Bytes()}}
	if err := h.storeCommit(ctx, c); err != nil {
		return 0, err
	}
	if c[0].Skip {
		return 0, nil
	}
	if c[0].Seq == 0 {
		return 0, Errorf(CodeUnavailable, "the session moved to another server node while it was being claimed")
	}
	return h.pushStored(ctx, s, p, c[0].Seq), nil
}

// restore builds a local session from its stored state.
func (h *Hub) restore(id string, st *SharedSession) *Session {
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
func (h *Hub) release(id string) {
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
func (h *Hub) keep(now int64, last *int64, scratch []*Session) {
	if h.shared == nil || now-*last < int64(h.cfg.SessionTTL)/4 {
		return
	}
	*last = now
	ids := make([]string, 0, len(scratch))
	for _, s := range scratch {
		ids = append(ids, s.id)
	}
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := h.shared.Keep(ctx, ids); err != nil {
		h.log.Warn("stored sessions not refreshed", "err", err)
	}
}

// Command runs one client command for session id of user (empty: any user), wherever the
// session is: here, on the node that holds it (the command is forwarded there), or, if no live
// node holds it, here after claiming it. HTTP transports use it for POST /api/send, so that a
// command reaching another node than the one streaming to the client does not move the
// session. A command that meets a session moving between nodes is tried again.
func (h *Hub) Command(ctx context.Context, id, user string, env Envelope) (Envelope, error) {
	var err error
	for attempt := 0; attempt < 4; attempt++ {
		h.mu.RLock()
		s, closed := h.sessions[id], h.closed
		h.mu.RUnlock()
		if closed {
			return Envelope{}, ErrClosed
		}
		var r Envelope
		switch {
		case s != nil:
			if user != "" && s.user != user {
				return Envelope{}, errNoSession()
			}
			r, err = s.Handle(ctx, env)
		case h.shared == nil || id == "":
			return Envelope{}, errNoSession()
		default:
			var held bool
			r, held, err = h.shared.Forward(ctx, id, user, env)
			if !held {
				if s, err = h.claim(ctx, id, user); err != nil {
					return Envelope{}, err
				}
				r, err = s.Handle(ctx, env)
			}
		}
		if !isMoved(err) {
			return r, err
		}
	}
	return Envelope{}, err
}

func isMoved(err error) bool {
	var ce *Error
	return errors.As(err, &ce) && ce.Code == CodeUnavailable && ce.Text == errMoved().Text
}

// localCommand is SharedHooks.Command: a command forwarded from another node.
func (h *Hub) localCommand(ctx context.Context, id, user string, env Envelope) (Envelope, error) {
	h.mu.RLock()
	s := h.sessions[id]
	h.mu.RUnlock()
	if s == nil || (user != "" && s.user != user) {
		return Envelope{}, ErrNotHeld
	}
	return s.Handle(ctx, env)
}
