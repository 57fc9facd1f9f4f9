package chat

import "context"

// mode is what differs between the hub's two modes: sessions that live in this process only
// (localMode, below) and sessions shared by several nodes through a SharedStore (sharedMode,
// cluster.go). NewHub picks one from Config.Broker; the hub asks it and never asks which it
// has. Everything else (local members, fan-out to cursors, presence events, the registry) is
// the same in both.
type mode interface {
	// start begins the broker's deliveries to the hub.
	start() error
	// admit refuses a new session of user when the user's sessions on other nodes are at
	// the limit already (the hub's own count covers this node).
	admit(ctx context.Context, user string) error
	// create stores new session s before the hub registers it.
	create(ctx context.Context, s *Session) error
	// commit queues p in s's outbox and returns its seq (0 if the session has ended).
	commit(ctx context.Context, s *Session, p *Payload) (uint64, error)
	// publish sends message p (with id) from s on topics and returns its id.
	publish(ctx context.Context, s *Session, cid CID, id string, p *Payload, topics ...string) (string, error)
	// join records in the registry that s is in room: first is the user's first session
	// there; listed says the member list was queued in s's outbox already.
	join(ctx context.Context, s *Session, room string) (first, listed bool, err error)
	// sync returns once everything published to s's topics before the call is in its
	// outbox.
	sync(ctx context.Context, s *Session) error
	// claim moves session id (of user, if not empty), which this node does not hold, here.
	claim(ctx context.Context, id, user string) (*Session, error)
	// forward runs env for session id (of user, if not empty), which this node does not hold,
	// where the session is.
	forward(ctx context.Context, id, user string, env Envelope) (Envelope, error)
	// drop deletes what is stored of expired session s.
	drop(ctx context.Context, s *Session)
	// keep is the janitor's turn at now: held are the sessions this node holds.
	keep(now int64, held []*Session)
}

// newMode returns the hub's mode for its broker: shared if the broker is a SharedStore.
func newMode(h *Hub) mode {
	if ss, ok := h.cfg.Broker.(SharedStore); ok {
		return newSharedMode(h, ss)
	}
	return localMode{h}
}

// localMode keeps every session in this process: an outbox entry is appended in memory with
// the next seq, and a session this node does not hold does not exist. Its Broker may still
// carry fan-out and the registry between nodes.
type localMode struct{ h *Hub }

func (m localMode) start() error { return m.h.pubsub.Start(m.h.deliver) }

func (localMode) admit(context.Context, string) error { return nil }

func (localMode) create(context.Context, *Session) error { return nil }

func (localMode) commit(_ context.Context, s *Session, p *Payload) (uint64, error) {
	return s.push(p), nil
}

func (m localMode) publish(ctx context.Context, _ *Session, _ CID, id string, p *Payload, topics ...string) (string, error) {
	for i, t := range topics {
		if err := m.h.pubsub.Publish(ctx, t, p.Bytes()); err != nil {
			if i > 0 { // the copy to the sender's own tabs
				m.h.log.Warn("dm copy to sender failed", "err", err)
				continue
			}
			return "", Errorf(CodeUnavailable, "message not sent, try again: %v", err)
		}
	}
	return id, nil
}

func (m localMode) join(ctx context.Context, s *Session, room string) (bool, bool, error) {
	first, err := m.h.presence.RoomJoin(ctx, room, s.user, s.id)
	return first, false, err
}

func (localMode) sync(context.Context, *Session) error { return nil }

func (localMode) claim(context.Context, string, string) (*Session, error) {
	return nil, errNoSession()
}

func (localMode) forward(context.Context, string, string, Envelope) (Envelope, error) {
	return Envelope{}, errNoSession()
}

func (localMode) drop(context.Context, *Session) {}

func (localMode) keep(int64, []*Session) {}
