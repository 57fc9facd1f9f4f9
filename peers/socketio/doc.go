// Package socketio is the Socket.IO peer (issue 14): the real socket.io server, pinned at
// Version, run by Node.js as a chat application would run it, and Go clients that speak its
// protocol (Engine.IO v4, Socket.IO v5) for the lab's simulated users. It owns the peer's
// install (install.go), its server script (server.js, embedded), the packet parsers
// (engineio.go) and the clients; it imports chat (types) and transports (Client, Options)
// only: never lab, results, netem, server or web.
//
// # The server
//
// Ensure installs socket.io with npm ci from the embedded package-lock.json into a cache dir
// (DefaultCacheDir; once, with one progress line) and writes server.js beside it;
// Install.Command runs it with node on a host and port. server.js is one process, one thread:
// path /socket.io/, transports polling and websocket, connectionStateRecovery on
// (maxDisconnectionDuration 2 minutes, skipMiddlewares), the user in the handshake's auth. Every
// socket is in room "lobby" and in "user:USER"; the events join, leave, say, dm and who are
// acknowledged ({ok: true} or {error: {code, message}} with wirelab's codes), and a message is
// the broadcast "msg" {room, from, text} or, for a DM, {to, from, text} to every tab of both
// users (the sending tab too, as wirelab does). who answers the room's users, for members.
//
// # The clients
//
// NewLongPollClient (socketio/longpoll) stays on HTTP long-polling; NewWebSocketClient
// (socketio/websocket) opens on polling and upgrades to a WebSocket as socket.io-client does.
// Both dial only through Options.Dial. What a Client does is what socket.io-client does with
// its defaults, so that the lab measures Socket.IO as browsers use it:
//   - Send emits the command with an ack and returns the ack as an ok (who: a presence with
//     the members) or a *chat.Error. While disconnected, an emit waits for the next
//     connection; an emit whose connection breaks before its ack is not sent again (retries
//     off): Send returns an error and the peer may or may not have done it.
//   - A broken connection (an HTTP or WebSocket error, no ping for pingInterval + pingTimeout,
//     Drop) is reconnected after 1 s, doubling up to 5 s, with auth {user, pid, offset}: the
//     server's CONNECT carries the pid and every broadcast carries its offset as its last
//     argument. When the server gives the same pid back (socket.recovered) it has sent the
//     broadcasts missed since that offset, ahead of the CONNECT. When it does not (the session
//     expired, or the client had received no broadcast yet, so had no offset), those are lost;
//     the client says so in an Info log and counts it (Reconnects, Recoveries). Nothing is
//     sent again or deduplicated beyond that: a lost copy is a finding.
//   - A reconnect the server did not recover is a new socket, in lobby and its user's room
//     only: the client joins again the rooms it had joined with Send (as a Socket.IO chat app
//     does when socket.recovered is false). The server recovers only a socket it has seen
//     close (a transport error or close, or its ping timeout); after a cut it did not see (a
//     network failing silently, or a poll GET cut within milliseconds of being sent, which
//     engine.io missed about one time in four here) it keeps the old socket until its ping
//     timeout (pingInterval 25 s + pingTimeout 20 s), and a client back within that is not
//     recovered (TestSilentCut).
//   - Messages carries each msg event as a chat.Envelope{Type: msg} with Room (or To), From and
//     Text; Seq is 0 (Socket.IO has no per-session sequence), so the lab's quiesce does not
//     wait for these clients (they have no LastSeq).
//
// Options used: URL, User, Dial, TLS (https), Buffer, NoReconnect, NoPong, Logger (an Info
// line for every reconnect that was not recovered). RetryInterval is not: socket.io-client
// does not send an event again. Drop cuts the connection so that the server sees it (on
// polling, a GET it holds: one out for 50 ms with no answer).
//
// # Goroutines
//
// A Client has one reconnect loop (from Connect to Close). Each Engine.IO connection has a
// poll reader (one held GET), a poll writer (one POST at a time: the server refuses overlapping
// requests) and a ping watchdog; with the upgrade, an upgrader, then a WebSocket reader and
// writer instead of the poll pair. Packets are handled on the current reader, in order. Close
// cancels everything and waits for all of it.
package socketio
