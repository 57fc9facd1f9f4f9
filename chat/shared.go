package chat

import (
	"context"
	"errors"
)

// SharedStore is a Broker that also keeps the topics' positions and the sessions where every
// node reaches them (Redis), so that several nodes share the sessions, not only the fan-out:
// any node can serve any session, no sticky sessions. It comes in parts named for what they
// keep, as centrifuge splits its Broker from its PresenceManager: the Broker's PubSub and
// Presence, a TopicLog (pub/sub with positions) and a SessionStore. chat/redisbroker
// implements them all with one struct; given one as Config.Broker, the hub runs in its shared
// mode (cluster.go) and uses each part for what it keeps.
//
// A node that gets a request for a session it does not hold claims it — the outbox, the rooms
// and the session's position in every topic move to the claiming node — and the node that held
// it lets it go. The hub commits every outbox entry to the SessionStore before any connection
// can read it, so a session survives the node that held it: a client resumes on another node
// with nothing lost or doubled.
type SharedStore interface {
	Broker
	TopicLog
	SessionStore
	// StartShared is called instead of Start.
	StartShared(hooks SharedHooks) error
}

// TopicLog is pub/sub with positions. Every message published on a topic gets the next
// position (1, 2, 3, ...) and the topic keeps the recent ones, so that a node fills what
// pub/sub missed, and a session that moves to another node catches up from the position its
// stored state records (SharedSession.Pos). Deliveries come, with their positions, through
// SharedHooks.Deliver.
type TopicLog interface {
	// PublishOnce publishes data (a message with id) on every topic, unless session sid has
	// already published a message under cid: then it publishes nothing and returns the id
	// used then.
	PublishOnce(ctx context.Context, sid string, cid CID, id string, data []byte, topics ...string) (prevID string, err error)
	// CatchUp returns the messages of topic after position from, up to the last one this node
	// has delivered, and how many of them the store no longer keeps. Call it inside Exclusive,
	// after Subscribe.
	CatchUp(ctx context.Context, topic string, from uint64) (msgs []TopicMessage, lost uint64, err error)
	// Sync returns once this node has delivered every message published on topics before
	// the call (read-your-writes across nodes: what a who answer follows).
	Sync(ctx context.Context, topics []string) error
	// Exclusive runs fn while no topic message is being delivered on this node.
	Exclusive(ctx context.Context, fn func() error) error
}

// SessionStore keeps every session where all nodes reach it: which node holds it, its outbox
// with seqs, its rooms and its position in every topic. Another node that claims a session
// becomes its holder; the node that held it hears so through SharedHooks.Released.
type SessionStore interface {
	// CreateSession stores a new session held by this node.
	CreateSession(ctx context.Context, sid, user string) error
	// Claim makes this node the holder of session sid (of user, if user is not empty) and
	// returns its stored state; it returns (nil, nil) if there is no such session.
	Claim(ctx context.Context, sid, user string) (*SharedSession, error)
	// Forward runs a command of session sid on the node that holds it and returns its answer.
	// held is false when no live node other than this one holds the session: the caller
	// claims it instead.
	Forward(ctx context.Context, sid, user string, env Envelope) (reply Envelope, held bool, err error)
	// Commit appends entries to the outboxes of sessions this node holds and sets each entry's
	// Seq; an entry whose session another node has claimed gets Seq 0 and is not stored.
	Commit(ctx context.Context, entries []Commit) error
	// Entries returns the stored outbox entries of session sid with seqs from..to (to 0: all
	// from on).
	Entries(ctx context.Context, sid string, from, to uint64) ([]StoredEntry, error)
	// JoinRoom is Presence.RoomJoin for a stored session: it records that session sid of user
	// is in room and, in the same step, queues the member list in its outbox if the room has
	// at most limit users.
	JoinRoom(ctx context.Context, room, user, sid string, limit int) (JoinResult, error)
	// Keep refreshes the time to live of sessions this node holds.
	Keep(ctx context.Context, sids []string) error
	// DropSession deletes a session this node holds (it expired).
	DropSession(ctx context.Context, sid string) error
}

// SharedHooks are the hub's callbacks for a SharedStore, given to StartShared.
type SharedHooks struct {
	// Deliver is called, from one goroutine, for every topic message in position order per
	// topic (holes filled from the store, repeats dropped).
	Deliver func(topic string, pos uint64, data []byte)
	// Released is called when another node has claimed a session this node holds.
	Released func(sid string)
	// Command runs a command another node forwarded for a session this node holds; it
	// returns ErrNotHeld if it does not hold it (any more).
	Command func(ctx context.Context, sid, user string, env Envelope) (Envelope, error)
}

// ErrNotHeld is SharedHooks.Command's answer for a session this node does not hold.
var ErrNotHeld = errors.New("chat: this node does not hold the session")

// Commit is one outbox entry for SessionStore.Commit. Topic and Pos say where a delivered
// message came from (empty for a reply to the session's own command).
type Commit struct {
	SID   string
	Topic string
	Pos   uint64
	Data  []byte
	Seq   uint64 // set by Commit: the entry's seq, 0 if the session is not held here
	// Skip is set by Commit when the session already has this topic position (a message that
	// reached it twice while it moved between nodes): nothing was stored.
	Skip bool
}

// JoinResult is what SessionStore.JoinRoom did.
type JoinResult struct {
	Held  bool   // false: another node holds the session now; nothing was done
	First bool   // the user's first session in the room
	List  Commit // the member list queued in the outbox (Seq 0: none)
}

// TopicMessage is a message kept in a topic, with its position.
type TopicMessage struct {
	Pos  uint64
	Data []byte
}

// SharedSession is a session's stored state, as Claim returns it.
type SharedSession struct {
	User   string
	Seq    uint64            // newest seq
	Rooms  []string          // rooms besides lobby too (lobby included)
	Pos    map[string]uint64 // topic -> position of the last message committed
	Outbox []StoredEntry     // the outbox, oldest first; seqs contiguous, ending at Seq
}

// StoredEntry is one stored outbox entry.
type StoredEntry struct {
	Seq  uint64
	At   int64 // unix ns when it was committed
	Data []byte
}
