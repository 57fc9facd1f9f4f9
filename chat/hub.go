package chat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Lobby is the room every session is in.
const Lobby = "lobby"

// Config configures a Hub. The zero value of every field means its default.
type Config struct {
	// Node names this node; it prefixes message ids (default: 6 random hex digits).
	Node string
	// Broker carries fan-out and the registry (default: a new MemoryBroker). A Broker that is
	// also a SharedStore (chat/redisbroker) makes the hub one node of several that share their
	// sessions.
	Broker Broker
	// Limits bound client commands.
	Limits Limits
	// Outbox is how many envelopes a session keeps for resume (default 1024).
	Outbox int
	// OutboxBytes is how many bytes of envelopes a session keeps for resume (default 1 KiB per
	// Outbox entry: 1 MiB), each counted as its encoded size plus EntryOverhead. Beyond it the
	// oldest go, as beyond Outbox: a client that asks for them gets a gap error.
	OutboxBytes int
	// OutboxAge is how long an envelope stays in the outbox (default 2 minutes).
	OutboxAge time.Duration
	// SendQueue is how far an attached connection may fall behind before it is disconnected
	// as a slow consumer (default 512; at most Outbox, so that it can always resume).
	SendQueue int
	// Heartbeat is the ping interval on persistent transports (default 25 s).
	Heartbeat time.Duration
	// HeartbeatTimeout is how long after a ping without hearing anything a connection is
	// closed (default 20 s).
	HeartbeatTimeout time.Duration
	// SessionTTL is how long a session without a connection, and a polling session without a
	// request, lives (default 60 s).
	SessionTTL time.Duration
	// MaxSessions is how many sessions this node holds at most (default 100,000); Open answers
	// server_full beyond it. Sessions claimed from another node of a cluster are not refused.
	MaxSessions int
	// MaxSessionsPerUser is how many sessions (tabs) one user may have open at most (default
	// 64), on every node together; Open answers too_many_sessions beyond it.
	MaxSessionsPerUser int
	// PresenceLimit: rooms with more users than this get no join/leave events, only member
	// lists on request (default 1000), so that a full lobby does not cost n² envelopes.
	PresenceLimit int
	// Logger receives structured logs (default slog.Default()).
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Node == "" {
		var b [3]byte
		_, _ = rand.Read(b[:])
		c.Node = hex.EncodeToString(b[:])
	}
	if c.Broker == nil {
		c.Broker = NewMemoryBroker()
	}
	c.Limits = c.Limits.withDefaults()
	if c.Outbox <= 0 {
		c.Outbox = 1024
	}
	if c.OutboxBytes <= 0 {
		c.OutboxBytes = c.Outbox << 10
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 100_000
	}
	if c.MaxSessionsPerUser <= 0 {
		c.MaxSessionsPerUser = 64
	}
	if c.OutboxAge <= 0 {
		c.OutboxAge = 2 * time.Minute
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 512
	}
	if c.SendQueue > c.Outbox {
		c.SendQueue = c.Outbox
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 25 * time.Second
	}
	if c.HeartbeatTimeout <= 0 {
		c.HeartbeatTimeout = 20 * time.Second
	}
	if c.SessionTTL <= 0 {
		c.SessionTTL = 60 * time.Second
	}
	if c.PresenceLimit <= 0 {
		c.PresenceLimit = 1000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// ErrClosed is returned by Open and Lookup after Shutdown.
var ErrClosed = errors.New("chat: hub is shut down")

// Hub is the chat core of one node: sessions, rooms, presence and fan-out. It knows nothing of
// transports: they open or look up sessions, hand it client envelopes with Session.Handle and
// read what to send from a Cursor.
//
// Concurrency: every method is safe for concurrent use. The Hub runs one goroutine (the
// janitor: heartbeats, expiry); Shutdown stops it and waits.
type Hub struct {
	cfg      Config
	log      *slog.Logger
	pubsub   PubSub       // Config.Broker's fan-out
	presence Presence     // Config.Broker's registry
	mode     mode         // localMode, or sharedMode if Config.Broker is a SharedStore
	clock    atomic.Int64 // coarse unix-ns clock, advanced by the janitor
	ids      atomic.Uint64
	cc       clusterCounters

	// topicMu serialises, per topic (hashed), a change of local membership with the broker
	// subscription that follows it, so that a subscribe and an unsubscribe of the same topic
	// cannot overtake each other.
	topicMu [64]sync.Mutex

	mu       sync.RWMutex
	sessions map[string]*Session
	users    map[string]*members // local sessions per user
	perUser  map[string]int      // local sessions per user, with those being opened
	opening  int                 // sessions being opened (counted against MaxSessions)
	rooms    map[string]*members // local sessions per room
	closed   bool

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// members is a copy-on-write list of local sessions: fan-out reads it without a lock.
type members struct {
	list atomic.Pointer[[]*Session]
}

func (m *members) load() []*Session {
	if p := m.list.Load(); p != nil {
		return *p
	}
	return nil
}

func (m *members) add(s *Session) int {
	old := m.load()
	n := make([]*Session, len(old), len(old)+1)
	copy(n, old)
	n = append(n, s)
	m.list.Store(&n)
	return len(n)
}

func (m *members) remove(s *Session) int {
	old := m.load()
	n := make([]*Session, 0, len(old))
	for _, x := range old {
		if x != s {
			n = append(n, x)
		}
	}
	m.list.Store(&n)
	return len(n)
}

// NewHub starts a hub.
func NewHub(cfg Config) (*Hub, error) {
	cfg = cfg.withDefaults()
	h := &Hub{
		cfg:      cfg,
		log:      cfg.Logger,
		pubsub:   cfg.Broker,
		presence: cfg.Broker,
		sessions: map[string]*Session{},
		users:    map[string]*members{},
		perUser:  map[string]int{},
		rooms:    map[string]*members{},
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	h.clock.Store(time.Now().UnixNano())
	h.mode = newMode(h)
	if err := h.mode.start(); err != nil {
		return nil, err
	}
	go h.janitor()
	return h, nil
}

// Config returns the hub's configuration with defaults filled in.
func (h *Hub) Config() Config { return h.cfg }

// Limits returns the hub's limits with defaults filled in.
func (h *Hub) Limits() Limits { return h.cfg.Limits }

// Open starts a new session for user, in the lobby, and returns it. Its welcome envelope is
// Welcome(s).
func (h *Hub) Open(ctx context.Context, user string) (*Session, error) {
	if !ValidName(user) {
		return nil, Errorf(CodeBadUser, "user %q is not a valid name (1-64 of A-Z a-z 0-9 _ . -)", Clip(user))
	}
	if err := h.mode.admit(ctx, user); err != nil {
		return nil, err
	}
	h.mu.Lock()
	switch {
	case h.closed:
		h.mu.Unlock()
		return nil, ErrClosed
	case len(h.sessions)+h.opening >= h.cfg.MaxSessions:
		h.mu.Unlock()
		return nil, Errorf(CodeServerFull, "this server holds %d sessions, its limit; try again later or another server", h.cfg.MaxSessions)
	case h.perUser[user] >= h.cfg.MaxSessionsPerUser:
		h.mu.Unlock()
		return nil, errTooManySessions(user, h.cfg.MaxSessionsPerUser)
	}
	h.opening++
	h.perUser[user]++
	h.mu.Unlock()
	var b [16]byte
	_, _ = rand.Read(b[:])
	s := h.newSession(hex.EncodeToString(b[:]), user)
	if err := h.mode.create(ctx, s); err != nil {
		h.mu.Lock()
		h.opening--
		h.dropUserLocked(user)
		h.mu.Unlock()
		return nil, err
	}
	h.mu.Lock()
	h.opening--
	if h.closed {
		h.dropUserLocked(user)
		h.mu.Unlock()
		return nil, ErrClosed
	}
	h.sessions[s.id] = s
	h.mu.Unlock()
	h.addMember(ctx, h.users, "user:", user, s)
	if err := h.presence.AddSession(ctx, user, s.id); err != nil {
		h.log.Warn("broker registry failed", "user", user, "err", err)
	}
	if _, err := h.join(ctx, s, Lobby); err != nil {
		h.log.Warn("joining lobby failed", "user", user, "err", err)
	}
	return s, nil
}

// newSession makes a session of user with id, not yet registered anywhere.
func (h *Hub) newSession(id, user string) *Session {
	s := &Session{id: id, user: user, hub: h, rooms: map[string]struct{}{}, cids: map[CID]okReply{}}
	now := h.clock.Load()
	s.lastHeard.Store(now)
	s.whoTokens, s.whoAt = int64(h.cfg.Limits.WhoBurst), now
	return s
}

func errTooManySessions(user string, max int) *Error {
	return Errorf(CodeTooManySessions, "user %q has %d sessions open, the limit; close a tab (its session expires) or reuse a session", user, max)
}

// forgetLocked removes s from the sessions this node holds, if it is there. Call it with h.mu
// held.
func (h *Hub) forgetLocked(s *Session) bool {
	if h.sessions[s.id] != s {
		return false
	}
	delete(h.sessions, s.id)
	h.dropUserLocked(s.user)
	return true
}

func (h *Hub) dropUserLocked(user string) {
	if h.perUser[user] <= 1 {
		delete(h.perUser, user)
	} else {
		h.perUser[user]--
	}
}

func errExpired() *Error {
	return Errorf(CodeUnknownSession, "the session has expired; open a new one")
}

// Welcome is the envelope that greets a new connection of s.
func Welcome(s *Session) Envelope {
	return Envelope{Type: TypeWelcome, Session: s.id, User: s.user}
}

// Lookup finds a live session. If user is not empty it must be the session's user.
func (h *Hub) Lookup(id, user string) (*Session, error) {
	return h.LookupContext(context.Background(), id, user)
}

// LookupContext finds a live session. If user is not empty it must be the session's user. With
// a SharedStore, a session held by another node (or by one that died) is claimed: it moves here.
func (h *Hub) LookupContext(ctx context.Context, id, user string) (*Session, error) {
	h.mu.RLock()
	s := h.sessions[id]
	closed := h.closed
	h.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	if s == nil && id != "" {
		return h.mode.claim(ctx, id, user)
	}
	if s == nil || (user != "" && s.user != user) {
		return nil, errNoSession()
	}
	return s, nil
}

func errNoSession() *Error {
	return Errorf(CodeUnknownSession, "no such session (it may have expired); open a new one")
}

// Holds reports whether this node holds session id now (without claiming it).
func (h *Hub) Holds(id string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.sessions[id] != nil
}

// Sessions returns how many sessions this node holds.
func (h *Hub) Sessions() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.sessions)
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
		case id == "":
			return Envelope{}, errNoSession()
		default:
			r, err = h.mode.forward(ctx, id, user, env)
		}
		if !isMoved(err) {
			return r, err
		}
	}
	return Envelope{}, err
}

func (h *Hub) newID() string {
	return h.cfg.Node + "-" + strconv.FormatUint(h.ids.Add(1), 36)
}

// Handle executes one client command for s. The reply (ok for join, leave, say and dm;
// presence for who) is queued in the outbox, in seq order with everything else, and returned
// too, so a request-reply transport can put it in its answer. An error is returned only, not
// queued: the transport sends it back where the command came from.
func (s *Session) Handle(ctx context.Context, env Envelope) (Envelope, error) {
	s.Touch()
	h := s.hub
	switch env.Type {
	case TypePong, TypePing, TypeAck:
		return Envelope{}, nil
	case TypeWho:
		// A member list is for members, as a room's messages are (every session is in the
		// lobby).
		if env.Room != Lobby && !s.member(env.Room) {
			return Envelope{}, Errorf(CodeNotMember, "this session is not in room %q; join it to see its members", env.Room)
		}
		if err := s.whoAllowed(); err != nil {
			return Envelope{}, err
		}
		// Everything published to this session before the who is in its outbox ahead of the
		// answer, wherever it was published.
		if err := h.mode.sync(ctx, s); err != nil {
			return Envelope{}, err
		}
		users, err := h.presence.RoomUsers(ctx, env.Room)
		if err != nil {
			return Envelope{}, Errorf(CodeUnavailable, "member list unavailable: %v", err)
		}
		p := NewPayload(Envelope{Type: TypePresence, Room: env.Room, Members: users, CID: env.CID})
		s.whoCharge(len(p.raw))
		return s.replyPayload(ctx, p, Envelope{Type: TypePresence, Room: env.Room, Members: users, CID: env.CID})
	}
	if env.CID != "" {
		// A retry gets the same answer and nothing is done twice; a retry that races the
		// original waits for it. The answer is queued again: on transports whose answers
		// travel downstream, the retry would otherwise get none (the first copy may be
		// what was lost, or the client may already have taken it).
		for {
			s.mu.Lock()
			if r, ok := s.cids[env.CID]; ok {
				s.mu.Unlock()
				prev := Envelope{Type: TypeOK, CID: env.CID, ID: r.id, Room: r.room}
				n, err := h.mode.commit(ctx, s, NewPayload(prev))
				if err != nil {
					return Envelope{}, err
				}
				if prev.Seq = n; n == 0 {
					prev.Seq = r.seq // the session has ended: nothing was queued
				}
				return prev, nil
			}
			wait, busy := s.inflight[env.CID]
			if !busy {
				if s.inflight == nil {
					s.inflight = map[CID]chan struct{}{}
				}
				done := make(chan struct{})
				s.inflight[env.CID] = done
				s.mu.Unlock()
				defer func() {
					s.mu.Lock()
					delete(s.inflight, env.CID)
					s.mu.Unlock()
					close(done)
				}()
				break
			}
			s.mu.Unlock()
			select {
			case <-wait:
			case <-ctx.Done():
				return Envelope{}, ctx.Err()
			}
		}
	}
	var reply Envelope
	switch env.Type {
	case TypeJoin:
		if _, err := h.join(ctx, s, env.Room); err != nil {
			return Envelope{}, err
		}
		reply = Envelope{Type: TypeOK, CID: env.CID, Room: env.Room}
	case TypeLeave:
		if env.Room == Lobby {
			return Envelope{}, Errorf(CodeBadRoom, "every session stays in lobby")
		}
		if err := h.leave(ctx, s, env.Room); err != nil {
			return Envelope{}, err
		}
		reply = Envelope{Type: TypeOK, CID: env.CID, Room: env.Room}
	case TypeSay:
		if !s.member(env.Room) {
			return Envelope{}, Errorf(CodeNotMember, "this session is not in room %q; join it first", env.Room)
		}
		id := h.newID()
		p := NewPayload(Envelope{Type: TypeMsg, ID: id, Room: env.Room, From: s.user, Text: env.Text, TS: time.Now().UnixNano()})
		id, err := h.mode.publish(ctx, s, env.CID, id, p, "room:"+env.Room)
		if err != nil {
			return Envelope{}, err
		}
		reply = Envelope{Type: TypeOK, CID: env.CID, ID: id}
	case TypeDM:
		n, err := h.presence.UserSessions(ctx, env.To)
		if err != nil {
			return Envelope{}, Errorf(CodeUnavailable, "message not sent, try again: %v", err)
		}
		if n == 0 {
			return Envelope{}, Errorf(CodeUnknownUser, "user %q has no open session", env.To)
		}
		id := h.newID()
		p := NewPayload(Envelope{Type: TypeMsg, ID: id, To: env.To, From: s.user, Text: env.Text, TS: time.Now().UnixNano()})
		topics := []string{"user:" + env.To}
		if env.To != s.user { // the sender's tabs show it as sent
			topics = append(topics, "user:"+s.user)
		}
		id, err = h.mode.publish(ctx, s, env.CID, id, p, topics...)
		if err != nil {
			return Envelope{}, err
		}
		reply = Envelope{Type: TypeOK, CID: env.CID, ID: id}
	default:
		return Envelope{}, Errorf(CodeUnknownType, "unknown type %q", env.Type)
	}
	if env.CID == "" {
		return Envelope{}, nil
	}
	return s.reply(ctx, reply)
}

// reply queues env in s's outbox, remembers it under its cid, and returns it with its seq.
func (s *Session) reply(ctx context.Context, env Envelope) (Envelope, error) {
	return s.replyPayload(ctx, NewPayload(env), env)
}

// replyPayload is reply with env already encoded as p.
func (s *Session) replyPayload(ctx context.Context, p *Payload, env Envelope) (Envelope, error) {
	seq, err := s.hub.mode.commit(ctx, s, p)
	if err != nil {
		return Envelope{}, err
	}
	env.Seq = seq
	if env.CID != "" && env.Type == TypeOK {
		s.mu.Lock()
		s.cids[env.CID] = okReply{seq: seq, id: env.ID, room: env.Room}
		s.cidOrder = append(s.cidOrder, env.CID)
		if len(s.cidOrder) > 1024 {
			delete(s.cids, s.cidOrder[0])
			s.cidOrder = s.cidOrder[1:]
		}
		s.mu.Unlock()
	}
	return env, nil
}

// whoAllowed refills the session's allowance for who answers and refuses a who while it is
// spent: a member list of a big room is large, and a client asking for it again and again would
// fill its outbox with copies of it and keep the hub busy sorting names.
func (s *Session) whoAllowed() error {
	lim := &s.hub.cfg.Limits
	now := s.hub.clock.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	if dt := now - s.whoAt; dt > 0 {
		burst, rate := int64(lim.WhoBurst), int64(lim.WhoRate)
		if full := (burst - s.whoTokens) * int64(time.Second) / rate; dt > full {
			dt = full // also keeps the product below from overflowing
		}
		s.whoTokens = min(burst, s.whoTokens+dt*rate/int64(time.Second))
		s.whoAt = now
	}
	if s.whoTokens > 0 {
		return nil
	}
	wait := time.Duration((1 - s.whoTokens) * int64(time.Second) / int64(lim.WhoRate))
	return Errorf(CodeRateLimited, "member lists (who) are limited to %d KiB at once and %d KiB a second per session; ask again in %v, or follow the presence events",
		lim.WhoBurst>>10, lim.WhoRate>>10, wait.Round(10*time.Millisecond))
}

// whoCharge takes the size of a who answer from the session's allowance (it may go below zero:
// the next who waits until it is refilled).
func (s *Session) whoCharge(n int) {
	s.mu.Lock()
	s.whoTokens -= int64(n)
	s.mu.Unlock()
}

func (h *Hub) join(ctx context.Context, s *Session, room string) (bool, error) {
	s.memb.Lock()
	defer s.memb.Unlock()
	s.mu.Lock()
	if s.closed {
		err := s.goneLocked()
		s.mu.Unlock()
		return false, err
	}
	if _, ok := s.rooms[room]; ok {
		s.mu.Unlock()
		return false, nil
	}
	if len(s.rooms) >= h.cfg.Limits.MaxRooms {
		s.mu.Unlock()
		return false, Errorf(CodeTooManyRooms, "a session may be in at most %d rooms; leave one first", h.cfg.Limits.MaxRooms)
	}
	s.rooms[room] = struct{}{}
	s.mu.Unlock()

	h.addMember(ctx, h.rooms, "room:", room, s)
	first, listed, err := h.mode.join(ctx, s, room)
	if err != nil {
		h.log.Warn("broker registry failed", "room", room, "err", err)
	}
	s.mu.Lock()
	closed := s.closed
	gone := s.goneLocked()
	s.mu.Unlock()
	if closed {
		// The session expired while joining: expire may have dropped its rooms before this
		// one was registered. Undo it, or the room keeps a member that is gone.
		h.dropMember(ctx, s, room)
		return false, gone
	}
	if n, _ := h.presence.RoomCount(ctx, room); n <= h.cfg.PresenceLimit {
		if first {
			p := NewPayload(Envelope{Type: TypePresence, Room: room, User: s.user, Event: "join"})
			_ = h.pubsub.Publish(ctx, "room:"+room, p.Bytes())
		}
		if !listed {
			users, _ := h.presence.RoomUsers(ctx, room)
			s.push(NewPayload(Envelope{Type: TypePresence, Room: room, Members: users}))
		}
	}
	return true, nil
}

// topicLock returns the lock that orders local membership changes of topic with its broker
// subscription.
func (h *Hub) topicLock(topic string) *sync.Mutex {
	var x uint32 = 2166136261
	for i := 0; i < len(topic); i++ {
		x = (x ^ uint32(topic[i])) * 16777619
	}
	return &h.topicMu[x%uint32(len(h.topicMu))]
}

// addMember adds s to the local members of name in set (h.users or h.rooms; topic prefix
// "user:" or "room:") and subscribes to the topic if s is the first local member.
func (h *Hub) addMember(ctx context.Context, set map[string]*members, prefix, name string, s *Session) {
	topic := prefix + name
	lk := h.topicLock(topic)
	lk.Lock()
	defer lk.Unlock()
	h.mu.Lock()
	m := set[name]
	if m == nil {
		m = &members{}
		set[name] = m
	}
	first := m.add(s) == 1
	h.mu.Unlock()
	if first {
		if err := h.pubsub.Subscribe(ctx, topic); err != nil {
			h.log.Warn("broker subscribe failed", "topic", topic, "err", err)
		}
	}
}

// removeMember removes s from the local members of name and unsubscribes from the topic if it
// was the last local member.
func (h *Hub) removeMember(ctx context.Context, set map[string]*members, prefix, name string, s *Session) {
	topic := prefix + name
	lk := h.topicLock(topic)
	lk.Lock()
	defer lk.Unlock()
	h.mu.Lock()
	last := false
	if m := set[name]; m != nil && m.remove(s) == 0 {
		delete(set, name)
		last = true
	}
	h.mu.Unlock()
	if last {
		if err := h.pubsub.Unsubscribe(ctx, topic); err != nil {
			h.log.Warn("broker unsubscribe failed", "topic", topic, "err", err)
		}
	}
}

func (h *Hub) leave(ctx context.Context, s *Session, room string) error {
	s.memb.Lock()
	defer s.memb.Unlock()
	s.mu.Lock()
	if _, ok := s.rooms[room]; !ok {
		s.mu.Unlock()
		return nil
	}
	delete(s.rooms, room)
	s.mu.Unlock()
	h.dropMember(ctx, s, room)
	return nil
}

func (h *Hub) dropMember(ctx context.Context, s *Session, room string) {
	h.removeMember(ctx, h.rooms, "room:", room, s)
	last, err := h.presence.RoomLeave(ctx, room, s.user, s.id)
	if err != nil {
		h.log.Warn("broker registry failed", "room", room, "err", err)
	}
	if last {
		if n, _ := h.presence.RoomCount(ctx, room); n < h.cfg.PresenceLimit {
			p := NewPayload(Envelope{Type: TypePresence, Room: room, User: s.user, Event: "leave"})
			_ = h.pubsub.Publish(ctx, "room:"+room, p.Bytes())
		}
	}
}

// deliver is the broker's callback: one published envelope to every local session of a topic.
func (h *Hub) deliver(topic string, data []byte) {
	m := h.membersOf(topic)
	if m == nil {
		return
	}
	p := PayloadFromBytes(data)
	for _, s := range m.load() {
		s.push(p)
	}
}

// membersOf returns the local sessions of a broker topic ("room:NAME" or "user:NAME"), nil if
// none.
func (h *Hub) membersOf(topic string) *members {
	h.mu.RLock()
	defer h.mu.RUnlock()
	switch {
	case strings.HasPrefix(topic, "room:"):
		return h.rooms[topic[5:]]
	case strings.HasPrefix(topic, "user:"):
		return h.users[topic[5:]]
	}
	return nil
}

// expire ends a session: it leaves every room (presence follows) and its connection is told why.
func (h *Hub) expire(s *Session, why *Error) {
	ctx := context.Background()
	s.memb.Lock()
	defer s.memb.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.kickLocked(why)
	s.closed = true
	rooms := make([]string, 0, len(s.rooms))
	for r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.rooms = map[string]struct{}{}
	s.mu.Unlock()

	h.mu.Lock()
	h.forgetLocked(s)
	h.mu.Unlock()
	h.removeMember(ctx, h.users, "user:", s.user, s)
	for _, r := range rooms {
		h.dropMember(ctx, s, r)
	}
	if err := h.presence.RemoveSession(ctx, s.user, s.id); err != nil {
		h.log.Warn("broker registry failed", "user", s.user, "err", err)
	}
	h.mode.drop(ctx, s)
}

// janitor advances the clock, sends pings, closes connections that stopped answering and expires
// sessions past their TTL.
func (h *Hub) janitor() {
	defer close(h.done)
	tick := h.cfg.Heartbeat / 5
	if t := h.cfg.SessionTTL / 5; t < tick {
		tick = t
	}
	if tick > time.Second {
		tick = time.Second
	}
	if tick < 5*time.Millisecond {
		tick = 5 * time.Millisecond
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	var scratch []*Session
	for {
		select {
		case <-h.stop:
			return
		case now := <-t.C:
			h.clock.Store(now.UnixNano())
			scratch = h.sweep(now.UnixNano(), scratch[:0])
		}
	}
}

func (h *Hub) sweep(now int64, scratch []*Session) []*Session {
	h.mu.RLock()
	for _, s := range h.sessions {
		scratch = append(scratch, s)
	}
	h.mu.RUnlock()
	hb, hbTimeout, ttl := int64(h.cfg.Heartbeat), int64(h.cfg.HeartbeatTimeout), int64(h.cfg.SessionTTL)
	for _, s := range scratch {
		heard := s.lastHeard.Load()
		s.mu.Lock()
		c := s.cur
		expire := false
		switch {
		case c == nil:
			expire = now-heard > ttl
		case c.pings:
			if now-heard > hb+hbTimeout {
				s.kickLocked(Errorf(CodeHeartbeat, "nothing heard from the client for %v; reconnect to resume", time.Duration(now-heard).Round(time.Millisecond)))
			} else if now-s.lastPing >= hb {
				s.lastPing = now
				c.ping = true
				c.signal()
			}
		}
		s.trimLocked(now)
		s.mu.Unlock()
		if expire {
			h.expire(s, Errorf(CodeExpired, "session expired"))
		}
	}
	h.mode.keep(now, scratch)
	clear(scratch)
	return scratch
}

// Shutdown ends every connection with code shutdown, stops the janitor and waits for it. It is
// idempotent; it returns ctx.Err() if ctx ends first.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.once.Do(func() {
		h.mu.Lock()
		h.closed = true
		all := make([]*Session, 0, len(h.sessions))
		for _, s := range h.sessions {
			all = append(all, s)
		}
		h.mu.Unlock()
		for _, s := range all {
			s.mu.Lock()
			s.kickLocked(Errorf(CodeShutdown, "the server is shutting down; reconnect later"))
			s.mu.Unlock()
		}
		close(h.stop)
	})
	select {
	case <-h.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
