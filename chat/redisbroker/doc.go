// Package redisbroker is the chat core's Broker for several server nodes: room and user fan-out
// over Redis pub/sub, the registry of who is where in Redis, and every session's outbox in
// Redis, so that any node can answer any request of any session (no sticky sessions).
//
// Every message published on a topic gets the next position of that topic (a Redis counter)
// and is kept in a Redis stream besides being published; a node that misses a pub/sub message
// (pub/sub is at most once: a reconnect, a Redis restart) sees the hole in the positions and
// fills it from the stream. Whatever the stream no longer keeps is counted (Stats.Lost) and
// logged, never silent. With Redis persistence (appendonly), a Redis restart loses nothing.
//
// Registry entries (a user's sessions, a room's members) belong to the node that holds the
// session; each node keeps a heartbeat key alive, and when it stops (the node crashed) any
// other node reaps its entries: its sessions leave presence within Options.NodeTTL. The stored
// sessions themselves stay until their TTL, so their clients can resume on another node.
//
// One Broker implements every part of a chat.SharedStore; its files go by concern:
// redisbroker.go (options, connecting, starting, closing), pubsub.go (chat.PubSub and
// chat.TopicLog: positions, the reader and the dispatcher), sessions.go (chat.SessionStore:
// stored sessions, outboxes, claims), forward.go (commands run on the node that holds a
// session), registry.go (chat.Presence), liveness.go (node heartbeats, reaping dead nodes) and
// scripts.go (the Lua scripts and the key layout).
//
// Goroutines: a started Broker runs a pub/sub reader, a dispatcher (every delivery and every
// Exclusive function runs on it, one at a time), a heartbeat, and one goroutine per command
// forwarded to it; Close stops them all and waits. It does not touch go-redis's process-wide
// logger: a command that wants go-redis quiet calls QuietLogger.
//
// It imports chat and go-redis only: no transports, server, lab or netem.
package redisbroker
