// Package auto is the automatic transport: it opens the session on long polling, which works
// wherever HTTP does, so the first message flows at once; then, in the background, it tries the
// better transports in turn — wt-uni, websocket, stream — and moves the session to the first
// that connects, the way Engine.IO upgrades from polling to WebSocket. When a connection breaks
// it reconnects with the best transport that still works, long polling last.
//
// Nothing is lost or doubled by a move: the new connection resumes the same session with
// after=N (the newest seq the client holds without a hole), the server's new cursor replaces the
// old one, and the client engine drops anything the old connection delivered twice (by seq).
//
// Goroutines: besides the engine's, one upgrade goroutine per client, ended and waited for by
// Close.
//
// Files: client.go (Client, Candidates, the upgrade loop), wt.go (the wt-uni candidate). auto
// has no server side of its own: it reaches the other transports' endpoints, so its row in
// transports/all mounts nothing. The candidates and their order (wt-uni, websocket, stream,
// longpoll) are auto's policy, the one list of names it keeps. It imports chat, transports
// and the transports it tries.
package auto
