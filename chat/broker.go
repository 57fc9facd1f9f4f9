package chat

import (
	"context"
	"sort"
	"sync"
)

// PubSub carries fan-out between the nodes of a chat: the Hub publishes every room and user
// message and every presence event on a topic and delivers what PubSub hands back, so a
// transport never sees it.
//
// Topics are "room:NAME" and "user:NAME". Data is an encoded envelope (a Payload's JSON without
// seq); PubSub must not change it.
type PubSub interface {
	// Start begins delivering: deliver is called for every message published on a topic this
	// node subscribes to, from any node, in publish order per topic.
	Start(deliver func(topic string, data []byte)) error
	Publish(ctx context.Context, topic string, data []byte) error
	Subscribe(ctx context.Context, topic string) error
	Unsubscribe(ctx context.Context, topic string) error
}

// Presence is the registry of who is where, across nodes: which sessions a user has open and
// which users are in a room. AddSession records that session sid of user lives on this node;
// RoomJoin and RoomLeave record room membership of a session. UserSessions, RoomUsers and
// RoomCount read across nodes.
type Presence interface {
	AddSession(ctx context.Context, user, sid string) error
	RemoveSession(ctx context.Context, user, sid string) error
	UserSessions(ctx context.Context, user string) (int, error)
	RoomJoin(ctx context.Context, room, user, sid string) (firstOfUser bool, err error)
	RoomLeave(ctx context.Context, room, user, sid string) (lastOfUser bool, err error)
	RoomUsers(ctx context.Context, room string) ([]string, error)
	RoomCount(ctx context.Context, room string) (int, error)
}

// Broker is what a Hub is given (Config.Broker): fan-out and the registry. A single node uses
// MemoryBroker; several nodes share a broker over Redis (chat/redisbroker), which is also a
// SharedStore so that they share the sessions too.
type Broker interface {
	PubSub
	Presence
	Close() error
}

// MemoryBroker is the single-node Broker: Publish delivers synchronously, on the caller's
// goroutine.
type MemoryBroker struct {
	mu      sync.RWMutex
	deliver func(topic string, data []byte)
	users   map[string]map[string]struct{}            // user -> sids
	rooms   map[string]map[string]map[string]struct{} // room -> user -> sids
}

var _ Broker = (*MemoryBroker)(nil)

// NewMemoryBroker returns an empty in-memory broker.
func NewMemoryBroker() *MemoryBroker {
	return &MemoryBroker{
		users: map[string]map[string]struct{}{},
		rooms: map[string]map[string]map[string]struct{}{},
	}
}

func (b *MemoryBroker) Start(deliver func(topic string, data []byte)) error {
	b.mu.Lock()
	b.deliver = deliver
	b.mu.Unlock()
	return nil
}

func (b *MemoryBroker) Publish(_ context.Context, topic string, data []byte) error {
	b.mu.RLock()
	d := b.deliver
	b.mu.RUnlock()
	if d != nil {
		d(topic, data)
	}
	return nil
}

// Subscribe and Unsubscribe are no-ops: a single node hears every topic.
func (b *MemoryBroker) Subscribe(context.Context, string) error   { return nil }
func (b *MemoryBroker) Unsubscribe(context.Context, string) error { return nil }

func (b *MemoryBroker) AddSession(_ context.Context, user, sid string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.users[user]
	if s == nil {
		s = map[string]struct{}{}
		b.users[user] = s
	}
	s[sid] = struct{}{}
	return nil
}

func (b *MemoryBroker) RemoveSession(_ context.Context, user, sid string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.users[user]; s != nil {
		delete(s, sid)
		if len(s) == 0 {
			delete(b.users, user)
		}
	}
	return nil
}

func (b *MemoryBroker) UserSessions(_ context.Context, user string) (int, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.users[user]), nil
}

func (b *MemoryBroker) RoomJoin(_ context.Context, room, user, sid string) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.rooms[room]
	if r == nil {
		r = map[string]map[string]struct{}{}
		b.rooms[room] = r
	}
	s := r[user]
	first := len(s) == 0
	if s == nil {
		s = map[string]struct{}{}
		r[user] = s
	}
	s[sid] = struct{}{}
	return first, nil
}

func (b *MemoryBroker) RoomLeave(_ context.Context, room, user, sid string) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.rooms[room]
	s := r[user]
	if s == nil {
		return false, nil
	}
	if _, ok := s[sid]; !ok {
		return false, nil
	}
	delete(s, sid)
	if len(s) > 0 {
		return false, nil
	}
	delete(r, user)
	if len(r) == 0 {
		delete(b.rooms, room)
	}
	return true, nil
}

func (b *MemoryBroker) RoomUsers(_ context.Context, room string) ([]string, error) {
	b.mu.RLock()
	users := make([]string, 0, len(b.rooms[room]))
	for u := range b.rooms[room] {
		users = append(users, u)
	}
	b.mu.RUnlock()
	sort.Strings(users)
	return users, nil
}

func (b *MemoryBroker) RoomCount(_ context.Context, room string) (int, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.rooms[room]), nil
}

func (b *MemoryBroker) Close() error { return nil }
