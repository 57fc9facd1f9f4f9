// Package transports holds what the transports share: the Client interface and Options that the
// lab's simulated users and the conformance suite drive (client.go), the HTTP handler plumbing
// every HTTP transport uses (server.go: the session endpoints, tokens, reading after=N, error
// statuses and writing them; method.go: 405 with Allow), the Origin check for WebSocket and
// WebTransport (origin.go), and the Go clients' HTTP helpers (httpclient.go, httppoll.go,
// httpstream.go).
//
// Each transport is a package below (shortpoll, longpoll, stream, sse, websocket, webtransport,
// auto); transports/all names them for the lab and the tests; server/ mounts them on one
// listener. This package imports only chat: never server, netem or lab.
package transports
