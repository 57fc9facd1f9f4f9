// Package transports holds what the transports share: the Client interface and Options that the
// lab's simulated users and the conformance suite drive (client.go); the shape every transport
// mounts its server side with, Mux, QUICServer and Carrier (mount.go); the HTTP handler plumbing
// every HTTP transport uses (server.go: the session endpoints, tokens, SessionRequest, the start
// of every GET on a session, error statuses and writing them; method.go: 405 with Allow;
// streamserver.go: ServeStream, the one long response of the streaming transports, framed by
// each one's StreamFormat); the
// Origin check for WebSocket and WebTransport (origin.go); the client engine (engine.go); and the
// one Go client of the HTTP transports, HTTPEngine on a PollDialer or a StreamDialer
// (httpclient.go, httppoll.go, httpstream.go).
//
// Each transport is a package below (shortpoll, longpoll, stream, sse, websocket, webtransport,
// auto), each with doc.go, server.go (Mount) and client.go (NewClient); transports/all is the
// table of them (name, carrier, mount, client) that server/, lab/ and the tests read. This
// package imports only chat: never server, netem or lab.
package transports
