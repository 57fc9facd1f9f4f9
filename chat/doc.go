// Package chat is the chat core every transport shares: the wire protocol's envelopes
// (envelope.go: parsing, validation, the error codes), the Hub (hub.go, session.go: sessions, a
// user's tabs, rooms and presence, each session's outbox of seq-numbered envelopes that a client
// resumes from with after=N, the answers kept for retried commands, the byte and count budgets),
// signed user tokens (auth.go), and the hub's two modes behind one seam (mode.go): sessions in
// this process only (localMode), or one node of several sharing them through a store
// (sharedMode, cluster.go). The store comes in parts named for what they keep: PubSub and
// Presence (broker.go; MemoryBroker is the single node's), TopicLog and SessionStore
// (shared.go); chat/redisbroker implements them all on Redis.
//
// It owns what a message is and who receives it, never how it travels: it imports no other
// wirelab package (not transports, server, netem or lab), and the transports adapt the Hub to
// their wire (docs/PROTOCOL.md).
package chat
