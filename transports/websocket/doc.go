// Package websocket is the WebSocket transport (gorilla/websocket): GET /ws?user=U opens a
// session, GET /ws?user=U&session=S&after=N resumes one. Every envelope travels in its own text
// frame, in both directions. The server's first frame is always the welcome
// {"type":"welcome","session":S,"user":U}, then the session's outbox after N.
//
// # Server goroutines
//
// gorilla/websocket does the handshake (Upgrader, with net/http's buffers); after it the
// connection's frames are read and written here, because that is where the memory and the CPU
// per connection go. The HTTP handler returns at once (so net/http lets go of its buffers) and
// the connection costs two goroutines: a reader (frameReader: a 128-byte header buffer, a
// shallow stack, masked client frames checked as RFC 6455 says, pings answered, a message over
// Limits.FrameLimit closed with 1009) that hands each envelope to the chat core, and a writer
// that drains the session's cursor. The writer encodes a whole batch of envelopes — one frame each —
// into one buffer and writes it with one system call, so a connection that falls behind catches
// up in a few large writes instead of one write per message. Its buffer comes from a pool and
// goes back after every write: an idle connection holds no write buffer. Both goroutines are
// tracked by transports.Server, so server shutdown waits for them; on shutdown the writer sends
// the shutdown error envelope and a close frame.
//
// Errors in client envelopes are answered with error envelopes and the connection goes on; a
// message larger than Limits.FrameLimit closes it with status 1009 (message too big). When the
// core ends the connection (slow_consumer, heartbeat_timeout, replaced, shutdown) the writer
// sends the error envelope and a close frame; the client resumes with after=N.
//
// # Client
//
// Client is the shared transports.Engine on a gorilla dialer whose TCP comes from
// Options.Dial. One goroutine reads; sends and pongs are written under a mutex (gorilla allows
// one concurrent writer).
package websocket
