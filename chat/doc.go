// Package chat is the chat core every transport shares: the wire protocol's envelopes
// (envelope.go: parsing, validation, the error codes), the Hub (hub.go, session.go: sessions, a
// user's tabs, rooms and presence, each session's outbox of seq-numbered envelopes that a client
// resumes from with after=N, the answers kept for retried commands, the byte and count budgets),
// signed user tokens (auth.go), and the hub's two modes: one node in memory, or one node of
// several sharing a Broker/SharedStore (broker.go, shared.go, cluster.go; chat/redisbroker is the
// Redis implementation).
//
// It owns what a message is and who receives it, never how it travels: it imports no other
// wirelab package (not transports, server, netem or lab), and the transports adapt the Hub to
// their wire (docs/PROTOCOL.md).
package chat
